package session

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/testutil"
)

// unusedSTUN points nodes at a loopback port where no STUN server listens:
// tests never contact public servers, and NAT discovery simply fails.
var unusedSTUN = []string{"127.0.0.1:9"}

// testNode is a Node on loopback that records what it receives.
type testNode struct {
	*Node
	mu       sync.Mutex
	messages []string
	requests []PeerRequest
}

func newTestNode(t testing.TB, name string) *testNode {
	t.Helper()
	return recordingNode(t, NodeConfig{Name: name})
}

// recordingNode runs a testNode with cfg (see startNode).
func recordingNode(t testing.TB, cfg NodeConfig) *testNode {
	t.Helper()
	tn := &testNode{}
	cfg.Events = Events{
		Message: func(_ NodeID, text string) error {
			tn.mu.Lock()
			defer tn.mu.Unlock()
			tn.messages = append(tn.messages, text)
			return nil
		},
		PeerRequest: func(r PeerRequest) {
			tn.mu.Lock()
			defer tn.mu.Unlock()
			tn.requests = append(tn.requests, r)
		},
	}
	tn.Node = startNode(t, cfg)
	return tn
}

// runNode runs a node on loopback with a new identity and the given
// callbacks until the test ends.
func runNode(t testing.TB, name string, ev Events) *Node {
	t.Helper()
	return startNode(t, NodeConfig{Name: name, Events: ev})
}

// runNodeLogging is runNode with the node's log also written to w.
func runNodeLogging(t testing.TB, name string, w io.Writer, ev Events) *Node {
	t.Helper()
	return startNode(t, NodeConfig{Name: name, Events: ev, Logger: slog.New(slog.NewTextHandler(io.MultiWriter(tWriter{t}, w), &slog.HandlerOptions{Level: slog.LevelDebug}))})
}

// startNode runs a node until the test ends. Fields of cfg left unset
// get test defaults: a new identity, a UDP socket on any port, no STUN
// server, a 5 s punch timeout, a debug log in the test's log.
func startNode(t testing.TB, cfg NodeConfig) *Node {
	t.Helper()
	if cfg.Identity.Key == nil {
		ident, err := NewIdentity()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Identity = ident
	}
	if cfg.Conn == nil {
		cfg.Conn = listenUDP(t, 0)
	}
	if cfg.STUNServers == nil {
		cfg.STUNServers = unusedSTUN
	}
	if cfg.PunchTimeout == 0 {
		cfg.PunchTimeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return n
}

// listenUDP opens a node's socket on loopback, port port (0: any). Bound
// to loopback, a node's own LAN candidate is its loopback address, which
// peers never take from it (gossip.go): the host's real addresses stay
// out of tests.
func listenUDP(t testing.TB, port int) net.PacketConn {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// testLogger sends a node's log to the test log, shown only on failure.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func (tn *testNode) addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(tn.Port()))
}

func (tn *testNode) info() PeerInfo {
	return PeerInfo{ID: tn.ID(), Name: tn.name(), Candidates: []netip.AddrPort{tn.addr()}, LAN: []netip.AddrPort{tn.addr()}}
}

func (tn *testNode) got() ([]string, []PeerRequest) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return append([]string(nil), tn.messages...), append([]PeerRequest(nil), tn.requests...)
}

func stateOf(n *testNode, id NodeID) PeerStatus {
	for _, st := range n.Peers() {
		if st.ID == id {
			return st
		}
	}
	return PeerStatus{}
}

func TestNodesConnectAndExchangeMessages(t *testing.T) {
	a, b := newTestNode(t, "alice"), newTestNode(t, "bob")
	a.AddPeer(b.info())
	b.AddPeer(a.info())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.SendMessage(ctx, b.ID(), "hello bob"); err != nil {
		t.Fatal(err)
	}
	if err := b.SendMessage(ctx, a.ID(), "hello alice"); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := b.got(); len(msgs) != 1 || msgs[0] != "hello bob" {
		t.Fatalf("bob got %q", msgs)
	}
	if msgs, _ := a.got(); len(msgs) != 1 || msgs[0] != "hello alice" {
		t.Fatalf("alice got %q", msgs)
	}
	for _, pair := range []struct{ n, peer *testNode }{{a, b}, {b, a}} {
		st := stateOf(pair.n, pair.peer.ID())
		if st.State != StateConnected || st.Path != PathLAN || st.Addr != pair.peer.addr() {
			t.Fatalf("%s sees %+v", pair.n.name(), st)
		}
	}
}

func TestStrangerBecomesRequestAndIsRefused(t *testing.T) {
	a, stranger := newTestNode(t, "alice"), newTestNode(t, "mallory")
	// The stranger knows alice; alice does not know the stranger.
	stranger.AddPeer(a.info())
	testutil.WaitFor(t, 5*time.Second, "a peer request at alice", func() bool {
		_, reqs := a.got()
		return len(reqs) > 0
	})
	_, reqs := a.got()
	if reqs[0].ID != stranger.ID() || reqs[0].Name != "mallory" || reqs[0].Addr != stranger.addr() {
		t.Fatalf("request = %+v", reqs[0])
	}
	// A direct dial with the stranger's key is refused by alice's TLS.
	p := newPeer(a.info())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := stranger.dial(ctx, p, route{LocalUDP, a.addr()}); err == nil {
		t.Fatal("alice accepted a session from an unknown key")
	}
	if st := stateOf(stranger, a.ID()); st.State == StateConnected {
		t.Fatalf("stranger connected: %+v", st)
	}
	if _, reqs := a.got(); len(reqs) > 3 {
		t.Fatalf("%d peer-request events in a few seconds; they must be rate-limited", len(reqs))
	}
}

func TestImpostorKeyIsRefused(t *testing.T) {
	a, b, impostor := newTestNode(t, "alice"), newTestNode(t, "bob"), newTestNode(t, "bob")
	a.AddPeer(b.info())
	impostor.AddPeer(a.info())
	// Alice expects bob's key but dials the impostor's address.
	p := newPeer(PeerInfo{ID: b.ID(), Candidates: []netip.AddrPort{impostor.addr()}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := a.dial(ctx, p, route{LocalUDP, impostor.addr()})
	if err == nil {
		t.Fatal("alice accepted the impostor's key as bob's")
	}
	if ctx.Err() != nil {
		t.Fatalf("dial timed out instead of being refused: %v", err)
	}
}

func TestOfflinePeerReportsUnreachable(t *testing.T) {
	a := newTestNode(t, "alice")
	ghost, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port 9 of loopback: no probe is ever answered.
	a.AddPeer(PeerInfo{ID: ghost.ID, Name: "ghost", Candidates: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}})
	testutil.WaitFor(t, 10*time.Second, "ghost to be offline", func() bool {
		st := stateOf(a, ghost.ID)
		return st.State == StateOffline && st.Error != ""
	})
	st := stateOf(a, ghost.ID)
	if !strings.Contains(st.Error, ErrUnreachable.Error()) {
		t.Fatalf("offline without a reason: %+v", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := a.SendMessage(ctx, ghost.ID, "hi"); err == nil {
		t.Fatal("message to an unreachable peer succeeded")
	}
}

// runBob runs a node with ident, named bob, on port (0: any) with alice
// as its peer, until the returned stop is called; stop waits for it.
func runBob(t *testing.T, ident Identity, port int, alice *testNode) (*Node, func()) {
	t.Helper()
	n, err := NewNode(NodeConfig{Identity: ident, Name: "bob", Conn: listenUDP(t, port), STUNServers: unusedSTUN, PunchTimeout: 5 * time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	n.AddPeer(alice.info())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	return n, func() { cancel(); <-done }
}

// connectToBob makes bob, at port on loopback, alice's peer and waits for
// their session.
func connectToBob(t *testing.T, alice *testNode, bob NodeID, port int) {
	t.Helper()
	bAddr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
	alice.AddPeer(PeerInfo{ID: bob, Name: "bob", Candidates: []netip.AddrPort{bAddr}})
	testutil.WaitFor(t, 10*time.Second, "first session", func() bool { return stateOf(alice, bob).State == StateConnected })
}

func TestRestartedPeerReconnects(t *testing.T) {
	a := newTestNode(t, "alice")
	ident, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	b, stop := runBob(t, ident, 0, a)
	port := b.Port()
	connectToBob(t, a, ident.ID, port)
	stop()
	b, stop = runBob(t, ident, port, a)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.SendMessage(ctx, a.ID(), "back again"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if msgs, _ := a.got(); len(msgs) != 1 || msgs[0] != "back again" {
		t.Fatalf("alice got %q", msgs)
	}
}

// TestStoppedPeerSaysGoodbye stops a node: its peer learns at once that
// the session ended, not after the idle timeout, so a peer that restarts
// elsewhere is not taken for the one still at its old address.
func TestStoppedPeerSaysGoodbye(t *testing.T) {
	a := newTestNode(t, "alice")
	ident, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	b, stop := runBob(t, ident, 0, a)
	connectToBob(t, a, ident.ID, b.Port())
	stop()
	testutil.WaitFor(t, idleTimeout/3, "alice to see bob's session end", func() bool { return stateOf(a, ident.ID).State != StateConnected })
}

func TestDuplicateMessagesAreDropped(t *testing.T) {
	n := newTestNode(t, "alice")
	peer, other := mustID(t, 1), mustID(t, 2)
	tests := []struct {
		peer NodeID
		id   string
		want bool
	}{
		{peer, "a1", true},
		{peer, "a1", false}, // a retry whose first try arrived
		{other, "a1", true}, // same ID from another peer is another message
		{peer, "", true},    // no ID: cannot tell, keep it
		{peer, "", true},
	}
	for i, tc := range tests {
		if got := n.firstDelivery(tc.peer, tc.id); got != tc.want {
			t.Errorf("step %d: firstDelivery(%s, %q) = %v, want %v", i, tc.peer.Short(), tc.id, got, tc.want)
		}
	}
}

// TestWaitSessionWakesOnChange: WaitSession returns as soon as a session
// is up, and as soon as the peer is removed.
func TestWaitSessionWakesOnChange(t *testing.T) {
	a, b := newTestNode(t, "alice"), newTestNode(t, "bob")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	wait := func(id NodeID) <-chan error {
		got := make(chan error, 1)
		go func() {
			_, err := a.WaitSession(ctx, id)
			got <- err
		}()
		return got
	}
	a.AddPeer(b.info())
	got := wait(b.ID())
	b.AddPeer(a.info()) // only now can they connect
	if err := <-got; err != nil {
		t.Fatalf("WaitSession: %v", err)
	}

	ghost, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	a.AddPeer(PeerInfo{ID: ghost.ID, Candidates: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}})
	got = wait(ghost.ID)
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	a.RemovePeer(ghost.ID)
	err = <-got
	if !errors.Is(err, ErrPeerRemoved) || !errors.Is(err, ErrNoPeer) || err.Error() != "peer removed" {
		t.Fatalf("WaitSession for a removed peer: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("WaitSession noticed the removal after %s", took)
	}
}

// TestOnlyTheDialerLooksForBetterPaths: connected over a direct path with
// a better candidate that never answers, the dialer probes it at a low
// rate and the acceptor stays quiet (a probe from a connected peer tells
// the dialer the peer lost its session), so the session is never
// replaced.
func TestOnlyTheDialerLooksForBetterPaths(t *testing.T) {
	a, b := newTestNode(t, "alice"), newTestNode(t, "bob")
	if b.ID().Less(a.ID()) {
		a, b = b, a // a dials
	}
	silent := netip.MustParseAddrPort("127.0.0.1:9") // nothing answers there
	for _, pair := range [][2]*testNode{{a, b}, {b, a}} {
		pair[0].AddPeer(PeerInfo{ID: pair[1].ID(), Candidates: []netip.AddrPort{pair[1].addr(), silent}, LAN: []netip.AddrPort{silent}})
	}
	for _, pair := range [][2]*testNode{{a, b}, {b, a}} {
		testutil.WaitFor(t, 5*time.Second, "a direct session", func() bool {
			st := stateOf(pair[0], pair[1].ID())
			return st.State == StateConnected && st.Path == PathDirect
		})
	}
	first := a.peer(b.ID()).session()
	// The acceptor's last punch probes may still be on their way, and
	// each one the dialer takes wakes it to probe its better paths at
	// once (a peer's probe is news): count from a moment without any.
	testutil.WaitFor(t, 5*time.Second, "the punch probes to settle", func() bool {
		before := b.probesSent.Load()
		time.Sleep(300 * time.Millisecond)
		return b.probesSent.Load() == before
	})
	dialerBefore, acceptorBefore := a.probesSent.Load(), b.probesSent.Load()
	const watch = 2*minUpgradeProbe + minUpgradeProbe/2
	time.Sleep(watch)
	dialer, acceptor := a.probesSent.Load()-dialerBefore, b.probesSent.Load()-acceptorBefore
	if acceptor != 0 {
		t.Errorf("the acceptor sent %d probes while connected", acceptor)
	}
	// At minUpgradeProbe, then twice that: two rounds of one probe.
	if dialer < 1 || dialer > 2 {
		t.Errorf("the dialer sent %d probes to the better candidate in %s; want 1 or 2", dialer, watch)
	}
	if now := a.peer(b.ID()).session(); now != first {
		t.Errorf("the session was replaced: %s, then %s", first, now)
	}
}
