package dht_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/dht"
	"github.com/punchdrop/punchdrop/rendezvous"
)

// opTimeout bounds one put or get in a loopback DHT; they take
// milliseconds, unless a node stops answering (then the library's 2 s
// resend delay and retries dominate).
const opTimeout = 20 * time.Second

// privateDHT is a few nodes on loopback, each on its own 127.0.0.x
// address, every one but the first bootstrapped from the first.
type privateDHT struct {
	nodes []*dht.Node
	taps  []*tapConn

	mu     sync.Mutex // guards following
	stored [][]dht.StoredItem
}

// startPrivateDHT starts n nodes and waits until each has bootstrapped.
func startPrivateDHT(t testing.TB, n int) *privateDHT {
	t.Helper()
	d := &privateDHT{stored: make([][]dht.StoredItem, n)}
	var earlier []string
	for i := range n {
		conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)}), 0)))
		if err != nil {
			t.Fatalf("listen on loopback: %v", err)
		}
		tap := &tapConn{PacketConn: conn}
		cfg := dht.Config{
			Conn:    tap,
			Logger:  testLogger(t, fmt.Sprintf("node%d", i)),
			OnStore: func(it dht.StoredItem) { d.mu.Lock(); d.stored[i] = append(d.stored[i], it); d.mu.Unlock() },
		}
		// Each node joins through all the nodes before it, so that its
		// bootstrap queries each of them and each pings it back. Joining
		// through the first alone left it to the bootstrap traversal
		// whether a middle node ever heard of the later ones (node 1
		// knew 2 of 4 after 10 s in one CI run).
		cfg.Bootstrap = slices.Clone(earlier)
		node, err := dht.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		earlier = append(earlier, node.Addr().String())
		select {
		case <-node.Bootstrapped():
		case <-time.After(opTimeout):
			t.Fatalf("node %d did not bootstrap", i)
		}
		if err := node.BootstrapErr(); err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		d.nodes = append(d.nodes, node)
		d.taps = append(d.taps, tap)
	}
	d.waitForTables(t)
	return d
}

// settleTimeout bounds the wait for every node to know every other as
// good; ping-backs make that a matter of milliseconds.
const settleTimeout = 10 * time.Second

// waitForTables waits until every node has every other as a good node in
// its routing table, so that tests start from a settled DHT.
func (d *privateDHT) waitForTables(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(settleTimeout)
	for i, n := range d.nodes {
		for n.Stats().GoodNodes < len(d.nodes)-1 {
			if time.Now().After(deadline) {
				for j, m := range d.nodes {
					t.Logf("node %d at %s: %+v", j, m.Addr(), m.Stats())
				}
				t.Fatalf("node %d knows %d good nodes of %d after %v", i, n.Stats().GoodNodes, len(d.nodes)-1, settleTimeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// storedAt returns what node i stored so far.
func (d *privateDHT) storedAt(i int) []dht.StoredItem {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]dht.StoredItem(nil), d.stored[i]...)
}

// testLogger logs to the test at debug level when -v and
// PUNCHDROP_TEST_DEBUG are set, else only warnings.
func testLogger(t testing.TB, name string) *slog.Logger {
	level := slog.LevelWarn
	if testing.Verbose() && os.Getenv("PUNCHDROP_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level})).With("node", name)
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// tapConn keeps a copy of every datagram a node receives.
type tapConn struct {
	net.PacketConn
	mu       sync.Mutex // guards following
	received [][]byte
}

func (c *tapConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	if err == nil {
		c.mu.Lock()
		c.received = append(c.received, append([]byte(nil), b[:n]...))
		c.mu.Unlock()
	}
	return n, addr, err
}

func (c *tapConn) datagrams() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.received...)
}

// newRecord is a record of addresses from the documentation ranges, as a
// node behind a NAT with IPv6, a port mapping and a relay would publish.
func newRecord(seq int64, now time.Time) rendezvous.Record {
	return rendezvous.Record{Seq: seq, Time: now.UTC().Truncate(time.Second), Candidates: []rendezvous.Candidate{
		{Kind: rendezvous.Public, Addr: netip.MustParseAddrPort("203.0.113.7:41641")},
		{Kind: rendezvous.Public, Addr: netip.MustParseAddrPort("[2001:db8:5:6::7]:41641")},
		{Kind: rendezvous.PortMapped, Addr: netip.MustParseAddrPort("203.0.113.7:50123")},
		{Kind: rendezvous.Relay, Addr: netip.MustParseAddrPort("198.51.100.3:49152")},
	}}
}

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// lookup is what a peer that knows only the node ID does: compute the
// target of the period, get the item, open it.
func lookup(ctx context.Context, n *dht.Node, id ed25519.PublicKey, p rendezvous.Period, now time.Time, held int64) (rendezvous.Record, dht.OpStats, error) {
	key, err := rendezvous.BlindPublicKey(id, p)
	if err != nil {
		return rendezvous.Record{}, dht.OpStats{}, err
	}
	it, stats, err := n.Get(ctx, rendezvous.MutableTarget(key, nil), nil)
	if err != nil {
		return rendezvous.Record{}, stats, err
	}
	rec, err := rendezvous.Open(id, p, it, now, held)
	return rec, stats, err
}
