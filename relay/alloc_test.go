package relay

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// allocate makes an allocation on url for a test.
func allocate(t *testing.T, url string, opts Options) *Allocation {
	t.Helper()
	srv, err := ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Allocate(t.Context(), srv, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// peer is a plain UDP socket on loopback: a node without a relay.
func peer(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// Datagrams go both ways between the relayed address and a peer that
// has no relay, over every transport to the server and with both kinds
// of credentials.
func TestRelayedDatagrams(t *testing.T) {
	for _, rest := range []bool{false, true} {
		s := startTURN(t, rest)
		for _, transport := range []string{TransportUDP, TransportTCP, TransportTLS} {
			name := transport
			if rest {
				name += "/rest"
			}
			t.Run(name, func(t *testing.T) {
				a := allocate(t, s.url(transport), s.options())
				if !a.Relayed.Addr().IsLoopback() || a.Relayed.Port() == 0 {
					t.Fatalf("relayed address %s", a.Relayed)
				}
				p := peer(t)
				if err := a.Permit(addrOf(p)); err != nil {
					t.Fatal(err)
				}
				if _, err := p.WriteToUDPAddrPort([]byte("to the relayed address"), a.Relayed); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 1500)
				a.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, from, err := a.ReadFrom(buf)
				if err != nil || string(buf[:n]) != "to the relayed address" || from.(*net.UDPAddr).AddrPort() != addrOf(p) {
					t.Fatalf("relay read %q from %v, %v", buf[:n], from, err)
				}
				if _, err := a.WriteTo([]byte("back from it"), net.UDPAddrFromAddrPort(addrOf(p))); err != nil {
					t.Fatal(err)
				}
				p.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, src, err := p.ReadFromUDPAddrPort(buf)
				if err != nil || string(buf[:n]) != "back from it" || src != a.Relayed {
					t.Fatalf("peer read %q from %v, %v; want it from %s", buf[:n], src, err, a.Relayed)
				}
			})
		}
	}
}

// QUIC runs over the relayed address as over any socket: a peer without
// a relay dials it, and a megabyte goes each way, with the relay reached
// over UDP, TCP and TLS (the last two are what a network that drops UDP
// leaves).
func TestQUICOverRelay(t *testing.T) {
	s := startTURN(t, false)
	for _, transport := range []string{TransportUDP, TransportTCP, TransportTLS} {
		t.Run(transport, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			a := allocate(t, s.url(transport), s.options())
			p := peer(t)
			if err := a.Permit(addrOf(p)); err != nil {
				t.Fatal(err)
			}
			serverTLS, clientTLS := tlsPair(t)
			ln, err := (&quic.Transport{Conn: a}).Listen(serverTLS, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			payload := make([]byte, 1<<20)
			rand.Read(payload)
			served := make(chan error, 1)
			go func() {
				conn, err := ln.Accept(ctx)
				if err != nil {
					served <- err
					return
				}
				st, err := conn.AcceptStream(ctx)
				if err != nil {
					served <- err
					return
				}
				got, err := io.ReadAll(st)
				if err == nil && !bytes.Equal(got, payload) {
					err = errors.New("the server got other bytes")
				}
				if err == nil {
					_, err = st.Write(payload)
					st.Close()
				}
				served <- err
			}()
			tr := &quic.Transport{Conn: p}
			conn, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(a.Relayed), clientTLS, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.CloseWithError(0, "")
			st, err := conn.OpenStreamSync(ctx)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			st.Write(payload)
			st.Close()
			back, err := io.ReadAll(st)
			if err != nil || !bytes.Equal(back, payload) {
				t.Fatalf("echo: %d bytes, %v", len(back), err)
			}
			if err := <-served; err != nil {
				t.Fatal(err)
			}
			t.Logf("1 MiB each way through the relay (%s to the server) in %s", transport, time.Since(start).Round(time.Millisecond))
		})
	}
}

// A wrong password is a clear refusal, at once.
func TestWrongPassword(t *testing.T) {
	s := startTURN(t, false)
	for _, url := range []string{
		strings.Replace(s.url(TransportUDP), testPass, "guessed", 1),
		strings.Replace(s.url(TransportTCP), testUser, "mallory", 1),
	} {
		srv, err := ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = Allocate(t.Context(), srv, Options{})
		if !errors.Is(err, ErrUnauthorized) || time.Since(start) > 3*time.Second {
			t.Fatalf("%s: %v after %s, want ErrUnauthorized at once", srv, err, time.Since(start))
		}
		if strings.Contains(err.Error(), "guessed") {
			t.Fatalf("the error repeats the password: %v", err)
		}
	}
}

// A relay that does not answer is an error that says so, within the
// allocation's time limit: never a hang.
func TestUnreachableRelay(t *testing.T) {
	silent := peer(t) // takes datagrams and never answers
	for _, url := range []string{
		"turn:u:p@" + addrOf(silent).String(),
		"turn:u:p@127.0.0.1:" + strconv.Itoa(freePort(t)) + "?transport=tcp", // refused
	} {
		srv, _ := ParseURL(url)
		start := time.Now()
		_, err := Allocate(t.Context(), srv, Options{})
		took := time.Since(start)
		if err == nil || took > allocateTimeout+2*time.Second {
			t.Fatalf("%s: %v after %s", url, err, took)
		}
		t.Logf("%s: %v (after %s)", srv, err, took.Round(time.Millisecond))
	}
}

// An allocation lost to a server restart is noticed by Check, and a new
// one can be made once the server is back.
func TestCheckNoticesLostAllocation(t *testing.T) {
	s := startTURN(t, false)
	a := allocate(t, s.url(TransportUDP), s.options())
	if err := a.Check(t.Context()); err != nil {
		t.Fatalf("check of a live allocation: %v", err)
	}
	s.stop()
	s.start()
	if err := a.Check(t.Context()); err == nil {
		t.Fatal("check passed after the server restarted: the allocation is gone")
	}
	b := allocate(t, s.url(TransportUDP), s.options())
	if err := b.Check(t.Context()); err != nil {
		t.Fatalf("check of the new allocation: %v", err)
	}
}

// tlsPair is a minimal TLS setup for the QUIC test: the relay does not
// care what QUIC carries.
func tlsPair(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	pool := writeCert(t, dir)
	cert, err := tls.LoadX509KeyPair(dir+"/cert.pem", dir+"/key.pem")
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"test"}},
		&tls.Config{RootCAs: pool, ServerName: testHost, NextProtos: []string{"test"}}
}
