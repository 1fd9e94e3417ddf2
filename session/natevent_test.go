package session

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/punchdrop/punchdrop/nat"
)

// serveSTUN answers binding requests on a loopback socket with the
// address they came from, as a STUN server does, until the test ends.
func serveSTUN(t *testing.T) string {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			req := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if req.Decode() != nil || req.Type != stun.BindingRequest {
				continue
			}
			resp, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
				&stun.XORMappedAddress{IP: from.IP, Port: from.Port}, stun.Fingerprint)
			if err == nil {
				conn.WriteToUDP(resp.Raw, from)
			}
		}
	}()
	return conn.LocalAddr().String()
}

// TestNATEventOnDiscovery: a discovery whose result is new (here the
// first one that succeeds) is reported through Events.NAT.
func TestNATEventOnDiscovery(t *testing.T) {
	ident, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	reports := make(chan nat.Report, 4)
	n, err := NewNode(NodeConfig{
		Identity:    ident,
		Name:        "alice",
		Conn:        listenUDP(t, 0),
		STUNServers: []string{serveSTUN(t)},
		Logger:      testLogger(t),
		Events:      Events{NAT: func(r nat.Report) { reports <- r }},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	select {
	case r := <-reports:
		if r.PublicAddr.Port() != uint16(n.Port()) || !r.PublicAddr.Addr().IsLoopback() {
			t.Fatalf("NAT event with public address %s; want 127.0.0.1:%d", r.PublicAddr, n.Port())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no NAT event after a successful discovery")
	}
}
