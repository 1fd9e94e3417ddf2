package session

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/session/probe"
	"github.com/punchdrop/punchdrop/testutil"
)

// rawPeer plays a peer by hand: its key, and sockets on loopback
// addresses to send probes from and to see what the node sends back.
type rawPeer struct {
	ident Identity
	socks map[string]*net.UDPConn // by source IP
}

// newRawPeer makes a peer with sockets on each of ips (127.0.0.x).
func newRawPeer(t testing.TB, ips ...string) *rawPeer {
	t.Helper()
	ident, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return &rawPeer{ident: ident, socks: rawSockets(t, ips...)}
}

func rawSockets(t testing.TB, ips ...string) map[string]*net.UDPConn {
	t.Helper()
	socks := map[string]*net.UDPConn{}
	for _, ip := range ips {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(ip)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		socks[ip] = c
	}
	return socks
}

func (r *rawPeer) addr(ip string) netip.AddrPort {
	return addrPort(r.socks[ip].LocalAddr())
}

// probe makes a signed probe from the raw peer to n.
func (r *rawPeer) probe(t testing.TB, n *Node, typ probe.Type, nonce uint64, at time.Time) []byte {
	t.Helper()
	return r.probeNamed(t, n, typ, nonce, at, "bob")
}

// probeNamed is probe with the given display name.
func (r *rawPeer) probeNamed(t testing.TB, n *Node, typ probe.Type, nonce uint64, at time.Time, name string) []byte {
	t.Helper()
	b, err := probe.Probe{Type: typ, From: r.ident.ID, To: n.ID(), Nonce: nonce, Time: at, Name: name}.Marshal(r.ident.Key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (r *rawPeer) send(t testing.TB, ip string, b []byte, n *Node) {
	t.Helper()
	if _, err := r.socks[ip].WriteToUDP(b, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: n.Port()}); err != nil {
		t.Fatal(err)
	}
}

// watch reads what arrives on the socket of ip for d and returns every
// datagram that match accepts.
func (r *rawPeer) watch(ip string, d time.Duration, match func([]byte) bool) [][]byte {
	return r.watchFor(ip, d, 0, match)
}

// watchFor is watch that returns early once it has max datagrams (0: no
// limit).
func (r *rawPeer) watchFor(ip string, d time.Duration, max int, match func([]byte) bool) [][]byte {
	c := r.socks[ip]
	c.SetReadDeadline(time.Now().Add(d))
	defer c.SetReadDeadline(time.Time{})
	var out [][]byte
	buf := make([]byte, 2048)
	for {
		size, _, err := c.ReadFromUDP(buf)
		if err != nil {
			return out
		}
		if match(buf[:size]) {
			out = append(out, bytes.Clone(buf[:size]))
			if len(out) == max {
				return out
			}
		}
	}
}

// nextRequest waits for a probe request from n on the socket of ip.
func (r *rawPeer) nextRequest(t testing.TB, ip string) probe.Probe {
	t.Helper()
	var pr probe.Probe
	got := r.watchFor(ip, 3*time.Second, 1, func(b []byte) bool {
		p, err := probe.Parse(b)
		if err == nil && p.Type == probe.Request {
			pr = p
			return true
		}
		return false
	})
	if len(got) == 0 {
		t.Fatalf("no probe request at %s", ip)
	}
	return pr
}

// isQUICInitial: a QUIC long-header packet, as a dial starts with.
func isQUICInitial(b []byte) bool { return len(b) > 0 && b[0]&0xc0 == 0xc0 }

// acksOf matches acks of nonce.
func acksOf(nonce uint64) func([]byte) bool {
	return func(b []byte) bool {
		p, err := probe.Parse(b)
		return err == nil && p.Type == probe.Ack && p.Nonce == nonce
	}
}

// aliceDials runs a node that is the dialer towards the returned raw
// peer, which it has as a peer at 127.0.0.1.
func aliceDials(t *testing.T) (*Node, *rawPeer) {
	t.Helper()
	alice := runNode(t, "alice", Events{})
	bob := newRawPeer(t, "127.0.0.1", "127.0.0.2")
	for !alice.ID().Less(bob.ident.ID) { // the smaller ID dials
		bob = newRawPeer(t, "127.0.0.1", "127.0.0.2")
	}
	alice.AddPeer(PeerInfo{ID: bob.ident.ID, Name: "bob", Candidates: []netip.AddrPort{bob.addr("127.0.0.1")}})
	return alice, bob
}

// TestOnlyAnAckOfOurProbeMakesUsDial: an ack makes the node dial only if
// it answers a probe the node sent, recently, to exactly the address the
// ack came from. A recorded ack played back from elsewhere would make it
// send QUIC handshakes to any address.
func TestOnlyAnAckOfOurProbeMakesUsDial(t *testing.T) {
	tests := []struct {
		name     string
		from     string              // source IP of the ack
		nonce    func(uint64) uint64 // from the nonce alice sent
		age      time.Duration       // how old the ack claims to be
		wantDial bool
	}{
		{"ack from the probed address", "127.0.0.1", same, 0, true},
		{"ack played back from another address", "127.0.0.2", same, 0, false},
		{"ack of a probe never sent", "127.0.0.1", func(n uint64) uint64 { return n + 1 }, 0, false},
		{"ack made long ago", "127.0.0.1", same, 10 * time.Minute, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			alice, bob := aliceDials(t)
			sent := bob.nextRequest(t, "127.0.0.1")
			ack := bob.probe(t, alice, probe.Ack, tc.nonce(sent.Nonce), time.Now().Add(-tc.age))
			bob.send(t, tc.from, ack, alice)
			dials := bob.watch(tc.from, time.Second, isQUICInitial)
			if got := len(dials) > 0; got != tc.wantDial {
				t.Fatalf("alice dialed %s: %v, want %v", tc.from, got, tc.wantDial)
			}
		})
	}
}

func same(n uint64) uint64 { return n }

// TestProbeOutsideClockWindowIsRefused: a probe whose time is minutes off
// ours is neither answered nor taken for a request, and the log says that
// the clocks disagree.
func TestProbeOutsideClockWindowIsRefused(t *testing.T) {
	tests := []struct {
		name   string
		offset time.Duration
		want   bool // answered
	}{
		{"now", 0, true},
		{"a minute behind", -time.Minute, true},
		{"ten minutes old", -10 * time.Minute, false},
		{"an hour ahead", time.Hour, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var log testutil.Buffer
			var mu sync.Mutex
			var requests []PeerRequest
			alice := runNodeLogging(t, "alice", &log, Events{PeerRequest: func(r PeerRequest) {
				mu.Lock()
				defer mu.Unlock()
				requests = append(requests, r)
			}})
			bob, stranger := newRawPeer(t, "127.0.0.1"), newRawPeer(t, "127.0.0.1")
			alice.AddPeer(PeerInfo{ID: bob.ident.ID, Name: "bob", Candidates: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}})
			at := time.Now().Add(tc.offset)
			bob.send(t, "127.0.0.1", bob.probe(t, alice, probe.Request, 42, at), alice)
			stranger.send(t, "127.0.0.1", stranger.probe(t, alice, probe.Request, 43, at), alice)
			acks := bob.watch("127.0.0.1", 500*time.Millisecond, acksOf(42))
			if got := len(acks) > 0; got != tc.want {
				t.Fatalf("probe %s answered: %v, want %v", tc.name, got, tc.want)
			}
			mu.Lock()
			gotRequest := len(requests) > 0
			mu.Unlock()
			if gotRequest != tc.want {
				t.Fatalf("stranger's probe %s became a request: %v, want %v", tc.name, gotRequest, tc.want)
			}
			if warned := strings.Contains(log.String(), "clocks of this computer and the sender's disagree"); warned == tc.want {
				t.Fatalf("clock warning logged: %v, want %v", warned, !tc.want)
			}
		})
	}
}

// TestReplayedRequestIsAnsweredOnce: a probe request played back, from
// its own address or another, is answered once, so a recording cannot
// make the node probe or ack anyone again.
func TestReplayedRequestIsAnsweredOnce(t *testing.T) {
	alice := runNode(t, "alice", Events{})
	bob := newRawPeer(t, "127.0.0.1", "127.0.0.2")
	alice.AddPeer(PeerInfo{ID: bob.ident.ID, Name: "bob", Candidates: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}})
	req := bob.probe(t, alice, probe.Request, 77, time.Now())
	for range 3 {
		bob.send(t, "127.0.0.1", req, alice)
	}
	if acks := bob.watch("127.0.0.1", 500*time.Millisecond, acksOf(77)); len(acks) != 1 {
		t.Fatalf("%d acks for one request sent three times; want 1", len(acks))
	}
	bob.send(t, "127.0.0.2", req, alice)
	if acks := bob.watch("127.0.0.2", 500*time.Millisecond, acksOf(77)); len(acks) != 0 {
		t.Fatalf("a request played back from another address was answered %d times", len(acks))
	}
	if p := alice.peer(bob.ident.ID); p.knowsIP(netip.MustParseAddr("127.0.0.2")) {
		t.Fatal("the played-back request's address became a candidate")
	}
	// A new request, with a nonce of its own, is answered.
	bob.send(t, "127.0.0.1", bob.probe(t, alice, probe.Request, 78, time.Now()), alice)
	if acks := bob.watch("127.0.0.1", 500*time.Millisecond, acksOf(78)); len(acks) != 1 {
		t.Fatalf("%d acks for a fresh request; want 1", len(acks))
	}
}

// TestReplayedProbeDoesNotMarkSpare: a spare socket of bob's counts as
// reached by a fresh request of bob's, not by one played back to it.
func TestReplayedProbeDoesNotMarkSpare(t *testing.T) {
	alice := runNode(t, "alice", Events{})
	bob := newRawPeer(t, "127.0.0.1")
	alice.AddPeer(PeerInfo{ID: bob.ident.ID, Name: "bob", Candidates: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}})
	var spare *spareSocket
	testutil.WaitFor(t, 5*time.Second, "a spare socket, once the node runs", func() bool {
		var err error
		spare, err = alice.openSpare(bob.ident.ID, 0)
		return err == nil
	})
	toSpare := func(b []byte) {
		t.Helper()
		if _, err := bob.socks["127.0.0.1"].WriteTo(b, spare.conn.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	req := bob.probe(t, alice, probe.Request, 90, time.Now())
	bob.send(t, "127.0.0.1", req, alice)
	if acks := bob.watch("127.0.0.1", 500*time.Millisecond, acksOf(90)); len(acks) != 1 {
		t.Fatalf("%d acks for a fresh request; want 1", len(acks))
	}
	toSpare(req) // played back to the spare
	time.Sleep(200 * time.Millisecond)
	if spare.heard.Load() {
		t.Fatal("a played-back request marked the spare reached")
	}
	toSpare(bob.probe(t, alice, probe.Request, 91, time.Now()))
	testutil.WaitFor(t, 2*time.Second, "a fresh request to mark the spare reached", spare.heard.Load)
}
