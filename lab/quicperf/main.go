// Command quicperf measures a bare quic-go stream, the ceiling punchdrop's
// transfers are compared with in make bench. The server sends -bytes to
// the first client on one stream; the client prints what it received and
// how long it took, as JSON.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"os"
	"time"

	"github.com/quic-go/quic-go"
)

func main() {
	listen := flag.String("listen", "", "serve on this `ADDR` (e.g. :7000)")
	connect := flag.String("connect", "", "receive from the server at this `ADDR`")
	size := flag.Int64("bytes", 1<<30, "bytes the server sends")
	flag.Parse()
	var err error
	switch {
	case *listen != "":
		err = serve(*listen, *size)
	case *connect != "":
		err = receive(*connect)
	default:
		err = fmt.Errorf("give -listen or -connect")
	}
	if err != nil {
		log.Fatal(err)
	}
}

var conf = &quic.Config{MaxIdleTimeout: 30 * time.Second}

func serve(addr string, size int64) error {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, NextProtos: []string{"quicperf"}}
	ln, err := quic.ListenAddr(addr, tlsConf, conf)
	if err != nil {
		return err
	}
	defer ln.Close()
	conn, err := ln.Accept(context.Background())
	if err != nil {
		return err
	}
	stream, err := conn.OpenStreamSync(context.Background())
	if err != nil {
		return err
	}
	buf := make([]byte, 256<<10)
	for sent := int64(0); sent < size; sent += int64(len(buf)) {
		if _, err := stream.Write(buf[:min(int64(len(buf)), size-sent)]); err != nil {
			return err
		}
	}
	stream.Close()
	<-conn.Context().Done() // the client closes once it has everything
	return nil
}

func receive(addr string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	conn, err := quic.DialAddr(ctx, addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"quicperf"}}, conf)
	if err != nil {
		return err
	}
	start := time.Now()
	// The server's stream shows up once it has written to it.
	stream, err := conn.AcceptStream(ctx)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, stream)
	if err != nil {
		return err
	}
	seconds := time.Since(start).Seconds()
	conn.CloseWithError(0, "done")
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"bytes": n, "seconds": seconds})
}
