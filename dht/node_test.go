package dht

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/rendezvous"
	"github.com/punchdrop/punchdrop/testutil"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelError}))
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func startLone(t *testing.T) *Node {
	t.Helper()
	n, err := New(Config{Listen: "127.0.0.1:0", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	<-n.Bootstrapped()
	return n
}

func TestNewRefusesBadBootstrap(t *testing.T) {
	for _, hp := range []string{"", "host", "host:", ":6881", "host:0", "host:65536", "host:port", "[::1]"} {
		if n, err := New(Config{Listen: "127.0.0.1:0", Bootstrap: []string{hp}, Logger: quietLogger()}); err == nil {
			n.Close()
			t.Errorf("bootstrap node %q accepted", hp)
		}
	}
}

// TestLoneNode checks a node that knows nobody: no bootstrap, operations
// fail at once with an error rather than hang, and a closed node refuses.
func TestLoneNode(t *testing.T) {
	n := startLone(t)
	if err := n.BootstrapErr(); err != nil {
		t.Errorf("a node without bootstrap nodes reports %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := n.Get(ctx, rendezvous.Target{1}, nil); err == nil {
		t.Error("Get on a lone node succeeded")
	}
	s, _ := rendezvous.NewBlindedSigner(make([]byte, 64), 1)
	it := rendezvous.Item{Key: s.Public(), Seq: 1, Value: []byte("x")}
	if _, err := n.Put(ctx, it); !errors.Is(err, rendezvous.ErrBadSignature) {
		t.Errorf("Put of an unsigned item: %v, want ErrBadSignature", err)
	}
	it.Sig = s.Sign(it.SignedBytes())
	if _, err := n.Put(ctx, it); err == nil {
		t.Error("Put on a lone node succeeded")
	}
	n.Close()
	if _, _, err := n.Get(ctx, rendezvous.Target{1}, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Get on a closed node: %v, want ErrClosed", err)
	}
	if _, err := n.Put(ctx, it); !errors.Is(err, ErrClosed) {
		t.Errorf("Put on a closed node: %v, want ErrClosed", err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestJunkIsDropped checks that datagrams that are not KRPC messages are
// counted and dropped before the library (which would print each to
// stderr), and that the node still answers afterwards.
func TestJunkIsDropped(t *testing.T) {
	n := startLone(t)
	c, err := net.Dial("udp4", n.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	junk := []string{"d1:ai3ee1:t2:aa1:y1:qe", "d1:t2:aa1:y1:q1:r5:xxxxxe", "\x00\x01\x02", "GET / HTTP/1.0\r\n\r\n"}
	for _, j := range junk {
		c.Write([]byte(j))
	}
	c.Write([]byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	nr, err := c.Read(buf)
	if err != nil {
		t.Fatalf("no answer to a ping after junk: %v", err)
	}
	if !isKRPC(buf[:nr]) {
		t.Errorf("answer %q is not KRPC", buf[:nr])
	}
	// The node counts its answer once the write returns, which may be
	// after the answer arrived here.
	var st Stats
	testutil.WaitFor(t, 5*time.Second, "the answer counted", func() bool { st = n.Stats(); return st.Sent.Packets > 0 })
	if st.Dropped != uint64(len(junk)) || st.Received.Packets != uint64(len(junk)+1) {
		t.Errorf("stats %+v: want %d dropped of %d received", st, len(junk), len(junk)+1)
	}
}
