package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/simnet"
	"github.com/punchdrop/punchdrop/testutil"
)

// simRelay is a TURN allocation as a node sees one, on the simulated
// internet: a socket on a public address that passes on only datagrams
// from IP addresses Permit let in, as a TURN server does. (The real
// thing, coturn, is tested in package relay and in the lab.)
type simRelay struct {
	*simnet.Conn
	mu        sync.Mutex // guards following
	permitted map[netip.Addr]bool
	lapsing   map[netip.Addr]time.Time // no longer renewed: let in until then
}

// simPermissionLapse stands for the 5 minutes a TURN server keeps a
// permission that is no longer renewed.
const simPermissionLapse = 2 * time.Second

// relay opens an allocation on a new public host, closed when the test
// ends.
func (w *simWorld) relay(t testing.TB) *simRelay {
	t.Helper()
	return relayOn(t, w.net.AddSite(nil).AddHost())
}

// relayOn opens an allocation on a relay server's host.
func relayOn(t testing.TB, server *simnet.Host) *simRelay {
	t.Helper()
	conn, err := server.Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &simRelay{Conn: conn, permitted: map[netip.Addr]bool{}, lapsing: map[netip.Addr]time.Time{}}
}

func (r *simRelay) Permit(addrs ...netip.AddrPort) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range addrs {
		r.permitted[a.Addr()] = true
		delete(r.lapsing, a.Addr())
	}
	return nil
}

// Retain stops renewing the permissions of addresses not in keep: they
// lapse after simPermissionLapse, as a TURN server's do after 5 minutes.
func (r *simRelay) Retain(keep []netip.Addr) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ip := range r.permitted {
		if !slices.Contains(keep, ip) {
			delete(r.permitted, ip)
			r.lapsing[ip] = time.Now().Add(simPermissionLapse)
		}
	}
}

// ReadFrom drops what comes from addresses not permitted.
func (r *simRelay) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := r.Conn.ReadFrom(b)
		if err != nil {
			return n, from, err
		}
		r.mu.Lock()
		ip := addrPort(from).Addr()
		ok := r.permitted[ip] || time.Now().Before(r.lapsing[ip])
		r.mu.Unlock()
		if ok {
			return n, from, nil
		}
	}
}

// relayNames names the allocations of the nodes in these tests.
const relayName = "turn:relay.sim:3478"

// setRelay gives n the allocation r.
func setRelay(t testing.TB, n *testNode, r *simRelay) {
	t.Helper()
	if err := n.SetRelay(relayName, r); err != nil {
		t.Fatal(err)
	}
}

// identitiesInOrder returns two identities, the first the dialer's.
func identitiesInOrder(t testing.TB) (dialer, acceptor Identity) {
	t.Helper()
	a, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if b.ID.Less(a.ID) {
		a, b = b, a
	}
	return a, b
}

// relayPair runs alice behind kindA and bob behind kindB, the dialer the
// one named, with relay allocations on the sides named, introduced once
// the allocations are in their connection strings.
func relayPair(t *testing.T, kindA, kindB simnet.Kind, dialer string, relays ...string) (w *simWorld, siteA, siteB *simnet.Site, a, b *testNode) {
	t.Helper()
	w = newSimWorld(t)
	siteA, siteB = w.net.AddSite(kindA.NAT()), w.net.AddSite(kindB.NAT())
	first, second := identitiesInOrder(t)
	if dialer == "bob" {
		first, second = second, first
	}
	cfgA, cfgB := w.config(t, siteA, "alice"), w.config(t, siteB, "bob")
	cfgA.Identity, cfgB.Identity = first, second
	a, b = recordingNode(t, cfgA), recordingNode(t, cfgB)
	waitNAT(t, a.Node)
	waitNAT(t, b.Node)
	for _, name := range relays {
		n := map[string]*testNode{"alice": a, "bob": b}[name]
		setRelay(t, n, w.relay(t))
	}
	return w, siteA, siteB, a, b
}

// TestSimulatedRelay: the pairings that cannot punch connect over a relay
// that one side (either, the dialer or not) or both hold, within 5 s,
// and say so on both sides; messages go both ways.
func TestSimulatedRelay(t *testing.T) {
	for _, pair := range [][2]simnet.Kind{{simnet.PortRestricted, simnet.Symmetric}, {simnet.Symmetric, simnet.Symmetric}} {
		for _, relays := range [][]string{{"bob"}, {"alice", "bob"}} {
			for _, dialer := range []string{"alice", "bob"} {
				name := fmt.Sprintf("%s-%s/relay-%v/%s-dials", pair[0], pair[1], relays, dialer)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					_, _, _, a, b := relayPair(t, pair[0], pair[1], dialer, relays...)
					start := time.Now()
					introduce(a, b)
					for _, side := range [][2]*testNode{{a, b}, {b, a}} {
						waitPath(t, side[0], side[1].ID(), PathRelay, relayConnectWithin)
					}
					took := time.Since(start)
					exchange(t, a, b)
					t.Logf("connected over the relay in %s: %s", took.Round(time.Millisecond), a.peer(b.ID()).session())
				})
			}
		}
	}
}

// pathEvents records the paths of the connected states a node reports.
type pathEvents struct {
	mu    sync.Mutex
	paths []PathKind
}

func (e *pathEvents) note(st PeerStatus) {
	if st.State != StateConnected {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.paths = append(e.paths, st.Path)
}

func (e *pathEvents) connected() []PathKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.paths)
}

// TestSimulatedRelayLosesToDirect: with a relay on one side, pairings
// that can punch still connect directly, from the first session on:
// the relay answers first, but the direct path answers within the grace
// the dialer gives it.
func TestSimulatedRelayLosesToDirect(t *testing.T) {
	for _, pair := range [][2]simnet.Kind{{simnet.PortRestricted, simnet.PortRestricted}, {simnet.FullCone, simnet.Symmetric}} {
		for _, dialer := range []string{"alice", "bob"} {
			t.Run(fmt.Sprintf("%s-%s/%s-dials", pair[0], pair[1], dialer), func(t *testing.T) {
				t.Parallel()
				w := newSimWorld(t)
				first, second := identitiesInOrder(t)
				if dialer == "bob" {
					first, second = second, first
				}
				cfgA, cfgB := w.config(t, w.net.AddSite(pair[0].NAT()), "alice"), w.config(t, w.net.AddSite(pair[1].NAT()), "bob")
				cfgA.Identity, cfgB.Identity = first, second
				paths := &pathEvents{}
				cfgA.Events.PeerState = paths.note
				a, b := &testNode{Node: startNode(t, cfgA)}, &testNode{Node: startNode(t, cfgB)}
				waitNAT(t, a.Node)
				waitNAT(t, b.Node)
				setRelay(t, b, w.relay(t))
				introduce(a, b)
				waitPath(t, a, b.ID(), PathDirect, relayConnectWithin)
				if got := paths.connected(); got[0] != PathDirect {
					t.Fatalf("alice's sessions ran on %v; want direct from the first", got)
				}
			})
		}
	}
}

// relayConnectWithin is how soon two nodes that cannot punch must be
// connected over a relay once both try (the promise).
const relayConnectWithin = 5 * time.Second

// TestSimulatedRelayUpgrade: a session over a relay between a
// port-restricted and a symmetric NAT moves to a direct path once the
// port-restricted one becomes easy (its router filters no more, as with a
// forwarded port), whichever side dials: both sides probe while on a
// relay, and the dialer moves the session, on the probe it sent or on the
// one it got. A transfer running on it resumes after the chunks the
// receiver holds. (The symmetric side's filtering alone changes nothing:
// its port per destination still cannot be predicted.)
func TestSimulatedRelayUpgrade(t *testing.T) {
	for _, dialer := range []string{"alice", "bob"} {
		t.Run(dialer+"-dials", func(t *testing.T) {
			t.Parallel()
			// 300 chunks stored at 50 a second: the transfer runs for 6 s,
			// and moves within the first few.
			const chunkSize, chunks = 64 << 10, 300
			w := newSimWorld(t)
			siteA, siteB := w.net.AddSite(simnet.PortRestricted.NAT()), w.net.AddSite(simnet.Symmetric.NAT())
			first, second := identitiesInOrder(t)
			if dialer == "bob" {
				first, second = second, first
			}
			recv := &chunkReceiver{size: chunkSize, pace: 20 * time.Millisecond, held: map[uint32]bool{}}
			cfgA, cfgB := w.config(t, siteA, "alice"), w.config(t, siteB, "bob")
			cfgA.Identity, cfgB.Identity = first, second
			cfgB.Events.Transfer = recv.serve
			paths := &pathEvents{}
			cfgA.Events.PeerState = paths.note
			a, b := &testNode{Node: startNode(t, cfgA)}, &testNode{Node: startNode(t, cfgB)}
			waitNAT(t, a.Node)
			waitNAT(t, b.Node)
			setRelay(t, b, w.relay(t))
			introduce(a, b)
			waitPath(t, a, b.ID(), PathRelay, relayConnectWithin)

			s := &chunkSender{n: a.Node, peer: b.ID(), size: chunkSize, chunks: chunks, resumed: make(chan struct{})}
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			sent := make(chan error, 1)
			go func() { sent <- s.send(ctx) }()
			testutil.WaitFor(t, 10*time.Second, "a tenth of the file", func() bool { return s.held.Load() >= chunks/10 })
			start := time.Now()
			siteA.SetFiltering(simnet.EndpointIndependent)
			for _, side := range [][2]*testNode{{a, b}, {b, a}} {
				waitPath(t, side[0], side[1].ID(), PathDirect, maxRelayUpgradeProbe+2*redialInterval)
			}
			took := time.Since(start)
			if err := <-sent; err != nil && !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			if got := recv.count(); got != chunks {
				t.Fatalf("the receiver holds %d of %d chunks", got, chunks)
			}
			select {
			case <-s.resumed:
			default:
				t.Fatal("the transfer ended before the session moved")
			}
			if !Moved(s.cutBy) {
				t.Fatalf("the transfer was cut off by %v, which Moved does not recognise", s.cutBy)
			}
			if got := paths.connected(); len(got) < 2 || got[0] != PathRelay || got[len(got)-1] != PathDirect {
				t.Fatalf("alice's owner heard of connected paths %v; want relay first, direct last", got)
			}
			resent := s.written.Load() - chunkSize*chunks
			t.Logf("moved from the relay to %s %s after the NAT became easy; %d bytes re-sent", a.peer(b.ID()).session(), took.Round(time.Millisecond), resent)
			// What can be lost: the chunk being stored, the one being
			// written, and what quic-go's stream window holds between.
			if maxLost := int64(2*chunkSize + 6<<20); resent > maxLost {
				t.Fatalf("%d bytes sent twice; at most %d were in flight", resent, maxLost)
			}
		})
	}
}

// TestSimulatedRelayGone: when the allocation goes (the relay died), the
// session on it ends at once, the node stops offering the relayed
// address, and a new allocation on the same server brings the peers back
// together. Bob's network drops all UDP (his uplink loses everything
// once he knows his address; his allocation, reached over TCP in real
// life, is the simulated relay's socket and unaffected). Alice's NAT
// filters by address only, so bob's new relayed address gets through to
// her; behind a stricter one she must hear of it first (over another
// session, or the rendezvous record).
func TestSimulatedRelayGone(t *testing.T) {
	w, _, siteB, a, b := relayPair(t, simnet.AddressRestricted, simnet.PortRestricted, "alice")
	siteB.SetLink(simnet.Link{Loss: 1})
	server := w.net.AddSite(nil).AddHost()
	setRelay(t, b, relayOn(t, server))
	introduce(a, b)
	waitPath(t, a, b.ID(), PathRelay, relayConnectWithin)
	first := a.peer(b.ID()).session()
	if err := b.SetRelay(relayName, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range b.LocalCandidates() {
		if c.Kind == PathRelay {
			t.Fatalf("bob still offers %v", c)
		}
	}
	if len(b.ConnString().Relay) != 0 {
		t.Fatalf("bob's string still names a relay: %s", b.ConnString())
	}
	testutil.WaitFor(t, time.Second, "the relayed session to end", func() bool { return first.conn.Context().Err() != nil })
	start := time.Now()
	setRelay(t, b, relayOn(t, server))
	waitPath(t, a, b.ID(), PathRelay, relayConnectWithin)
	exchange(t, a, b)
	t.Logf("back over the new allocation %s after it was made", time.Since(start).Round(time.Millisecond))
}

// A node that is closed takes no relay allocation; letting go of one is
// fine (its owner does that as it stops).
func TestSetRelayAfterClose(t *testing.T) {
	w := newSimWorld(t)
	cfg := w.config(t, w.net.AddSite(nil), "alice")
	ident, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Identity, cfg.Logger = ident, testLogger(t)
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := w.relay(t)
	if err := n.SetRelay(relayName, r); err != nil {
		t.Fatal(err)
	}
	if got := n.ConnString().Relay; len(got) != 1 || got[0] != r.AddrPort() {
		t.Fatalf("the string carries %v, want %s", got, r.AddrPort())
	}
	n.Close()
	if err := n.SetRelay(relayName, nil); err != nil {
		t.Fatalf("letting go of a relay after Close: %v", err)
	}
	if err := n.SetRelay(relayName, w.relay(t)); err == nil {
		t.Fatal("a closed node took a relay allocation")
	}
}

// TestSimulatedRelayForgetsRemovedPeer: once a peer is removed, the
// relay no longer lets its addresses in (its permissions are not renewed
// and lapse), so the set a relay renews stays what current peers name.
func TestSimulatedRelayForgetsRemovedPeer(t *testing.T) {
	w, _, _, a, b := relayPair(t, simnet.PortRestricted, simnet.Symmetric, "alice")
	r := w.relay(t)
	setRelay(t, b, r)
	introduce(a, b)
	waitPath(t, a, b.ID(), PathRelay, relayConnectWithin)
	permitted := func() int {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.permitted)
	}
	if permitted() == 0 {
		t.Fatal("bob's relay lets nobody in while alice reaches him through it")
	}
	b.RemovePeer(a.ID())
	testutil.WaitFor(t, 5*time.Second, "bob's relay to forget alice's addresses", func() bool { return permitted() == 0 })
}
