package simnet

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

func testCert(t testing.TB) tls.Certificate {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestQUICRunsOverConns: quic-go takes a Conn as its socket. A client
// behind a symmetric NAT with a lossy, slow uplink dials a public server
// and sends it 1 MiB, which arrives intact.
func TestQUICRunsOverConns(t *testing.T) {
	n := New(Config{Seed: 3})
	home := n.AddSite(Symmetric.NAT())
	home.SetLink(Link{Delay: 5 * time.Millisecond, Loss: 0.01})
	server := n.AddSite(nil).AddHost()
	sc, cc := listen(t, server, 443), listen(t, home.AddHost(), 0)
	st, ct := &quic.Transport{Conn: sc}, &quic.Transport{Conn: cc}
	t.Cleanup(func() { st.Close(); ct.Close() })

	alpn := []string{"simnet-test"}
	ln, err := st.Listen(&tls.Config{Certificates: []tls.Certificate{testCert(t)}, NextProtos: alpn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	want := make([]byte, 1<<20)
	rand.Read(want)
	got := make(chan []byte, 1)
	go func() {
		conn, err := ln.Accept(ctx)
		if err != nil {
			got <- nil
			return
		}
		stream, err := conn.AcceptStream(ctx)
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(stream)
		got <- b
		stream.Close()
	}()
	start := time.Now()
	conn, err := ct.Dial(ctx, net.UDPAddrFromAddrPort(sc.AddrPort()), &tls.Config{InsecureSkipVerify: true, NextProtos: alpn}, nil)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Write(want); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	if b := <-got; !bytes.Equal(b, want) {
		t.Fatalf("server got %d bytes, want the %d sent", len(b), len(want))
	}
	t.Logf("1 MiB over QUIC through a symmetric NAT, 10 ms RTT, 1%% loss each way: %s, rtt %s",
		time.Since(start).Round(time.Millisecond), conn.ConnectionStats().SmoothedRTT.Round(time.Millisecond))
	conn.CloseWithError(0, "")
}
