// Command quicperf measures a bare quic-go stream, the ceiling punchdrop's
// transfers are compared with in make bench. The server sends -bytes to
// the client; the client prints what it received and how long it took,
// as JSON. With -conns N the client opens N connections and the server
// sends an equal share of the bytes on one stream of each, at once: what
// striping over N congestion controllers gives, without punchdrop. With
// -time the client stops after that long and reports what it received
// by then; -window sets quic-go's receive windows (both sides must
// agree), to weigh them; -cubic N has the sender run CUBIC emulating N
// TCP connections (our copy of quic-go) instead of quic-go's NewReno.
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

func main() {
	listen := flag.String("listen", "", "serve on this `ADDR` (e.g. :7000)")
	connect := flag.String("connect", "", "receive from the server at this `ADDR`")
	size := flag.Int64("bytes", 1<<30, "bytes the server sends, in all")
	conns := flag.Int("conns", 1, "connections the bytes are striped over (both sides must agree)")
	limit := flag.Duration("time", 0, "the client stops after this long (0: once it has every byte)")
	window := flag.Uint64("window", 0, "receive window of each stream, in bytes: initial and maximum (0: quic-go's)")
	cubic := flag.Int("cubic", 0, "the sender runs CUBIC emulating `N` TCP connections (0: quic-go's NewReno)")
	flag.Parse()
	if *cubic > 0 {
		conf.Congestion, conf.CubicConnections = quic.CongestionCubic, *cubic
	}
	if *window > 0 {
		conf.InitialStreamReceiveWindow, conf.MaxStreamReceiveWindow = *window, *window
		conf.InitialConnectionReceiveWindow, conf.MaxConnectionReceiveWindow = *window*3/2, *window*3/2
	}
	var err error
	switch {
	case *conns < 1:
		err = fmt.Errorf("-conns %d: want at least 1", *conns)
	case *listen != "":
		err = serve(*listen, *size, *conns)
	case *connect != "":
		err = receive(*connect, *conns, *limit)
	default:
		err = fmt.Errorf("give -listen or -connect")
	}
	if err != nil {
		log.Fatal(err)
	}
}

var conf = &quic.Config{MaxIdleTimeout: 30 * time.Second}

func serve(addr string, size int64, conns int) error {
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
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for i := range conns {
		conn, err := ln.Accept(context.Background())
		if err != nil {
			return err
		}
		share := size / int64(conns)
		if i == conns-1 {
			share = size - share*int64(conns-1)
		}
		wg.Go(func() { errs[i] = send(conn, share) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// send writes n bytes on one stream of conn and waits for the client to
// close the connection, which it does once it has them all. With
// QUICPERF_STATS=FILE in its environment it appends the connection's
// congestion window, round trip and losses to FILE once a second: what
// limits a connection on a lossy path.
func send(conn *quic.Conn, n int64) error {
	stream, err := conn.OpenStreamSync(context.Background())
	if err != nil {
		return err
	}
	if path := os.Getenv("QUICPERF_STATS"); path != "" {
		go logStats(conn, path)
	}
	buf := make([]byte, 256<<10)
	for sent := int64(0); sent < n; sent += int64(len(buf)) {
		if _, err := stream.Write(buf[:min(int64(len(buf)), n-sent)]); err != nil {
			return err
		}
	}
	stream.Close()
	<-conn.Context().Done()
	return nil
}

func receive(addr string, conns int, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var stopped atomic.Bool // the time limit ended the run
	tlsConf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"quicperf"}}
	var open []*quic.Conn
	for range conns {
		conn, err := quic.DialAddr(ctx, addr, tlsConf, conf)
		if err != nil {
			return err
		}
		open = append(open, conn)
	}
	start := time.Now()
	if limit > 0 {
		stop := time.AfterFunc(limit, func() {
			stopped.Store(true)
			for _, conn := range open {
				conn.CloseWithError(0, "time is up")
			}
		})
		defer stop.Stop()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total int64
	errs := make([]error, conns)
	for i, conn := range open {
		wg.Go(func() {
			// The server's stream shows up once it has written to it.
			stream, err := conn.AcceptStream(ctx)
			if err != nil {
				if !stopped.Load() {
					errs[i] = err
				}
				return
			}
			n, err := io.Copy(io.Discard, stream)
			mu.Lock()
			total += n
			mu.Unlock()
			if !stopped.Load() {
				errs[i] = err
			}
		})
	}
	wg.Wait()
	seconds := time.Since(start).Seconds()
	for _, conn := range open {
		conn.CloseWithError(0, "done")
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"bytes": total, "seconds": seconds, "stopped": stopped.Load()})
}

// logStats appends conn's sender statistics to the file at path once a
// second until the connection ends.
func logStats(conn *quic.Conn, path string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		log.Print(err)
		return
	}
	defer f.Close()
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-conn.Context().Done():
			return
		case <-tick.C:
		}
		st := conn.ConnectionStats()
		fmt.Fprintf(f, "%s t=%.0fs cwnd=%d srtt=%s min_rtt=%s sent_pkts=%d lost_pkts=%d sent_bytes=%d\n",
			conn.RemoteAddr(), time.Since(start).Seconds(), st.CongestionWindow, st.SmoothedRTT.Round(time.Millisecond),
			st.MinRTT.Round(time.Millisecond), st.PacketsSent, st.PacketsLost, st.BytesSent)
	}
}
