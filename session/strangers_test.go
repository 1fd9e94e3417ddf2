package session

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/punchdrop/punchdrop/session/probe"
	"github.com/punchdrop/punchdrop/session/sessiontest"
	"github.com/punchdrop/punchdrop/testutil"
)

// floodSources is how many loopback addresses a flood comes from: more
// than any per-source limit would let through alone.
const floodSources = 64

func loopbackOf(n *Node) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(n.Port()))
}

// floodResult is what a probe flood against alice cost her.
type floodResult struct {
	sent, checks int
	lasted       time.Duration // from the first probe until the flood was over
	connectedIn  time.Duration // how long bob took to connect, mid-flood
}

// floodWhileConnecting floods alice with prober for d from floodSources
// addresses; a third of the way in it runs connect (which makes bob and
// alice peers) and waits for their session, which must come up before the
// flood ends.
func floodWhileConnecting(t *testing.T, alice *Node, bob *testNode, prober sessiontest.Prober, d time.Duration, connect func()) floodResult {
	t.Helper()
	sources := sessiontest.Sources(t, 2, floodSources)
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	checksBefore := alice.sigChecks.Load()
	var res floodResult
	var flooder sync.WaitGroup
	began := time.Now()
	flooder.Go(func() { res.sent = prober.Flood(ctx, sources) })
	time.Sleep(d / 3)
	start := time.Now()
	connect()
	_, err := bob.WaitSession(ctx, alice.ID())
	res.connectedIn = time.Since(start)
	flooder.Wait()
	res.lasted = time.Since(began)
	res.checks = int(alice.sigChecks.Load() - checksBefore)
	if err != nil {
		t.Fatalf("bob did not connect during the flood: %v", err)
	}
	return res
}

// legitChecks allows for the signature checks of bob's own probes and
// acks while he connects (5 a second each way, and some rounds).
const legitChecks = 50

// TestStrangerFloodIsBounded: a stranger floods alice with probes, each
// signed by a new key, from many addresses. Alice checks few signatures,
// reports few peer requests, and bob, a real peer, still connects.
func TestStrangerFloodIsBounded(t *testing.T) {
	const floodFor = 3 * time.Second
	var requests atomic.Int64
	started := time.Now()
	alice := runNode(t, "alice", Events{PeerRequest: func(PeerRequest) { requests.Add(1) }})
	bob := newTestNode(t, "bob")
	bob.AddPeer((&testNode{Node: alice}).info())
	prober := sessiontest.Prober{Target: loopbackOf(alice), To: alice.ID(), Name: "mallory"}
	res := floodWhileConnecting(t, alice, bob, prober, floodFor, func() { alice.AddPeer(bob.info()) })
	got := int(requests.Load())
	t.Logf("%d probes from %d addresses in %s, each from a new key: %d signature checks, %d peer requests; bob connected in %s",
		res.sent, floodSources, floodFor, res.checks, got, res.connectedIn.Round(time.Millisecond))
	maxChecks := strangerProbeBurst + int(strangerProbeRate*res.lasted.Seconds()) + legitChecks
	if res.checks > maxChecks {
		t.Errorf("%d signature checks; want at most %d", res.checks, maxChecks)
	}
	// Bob's own probes become a request too until alice adds him.
	maxRequests := requestBurst + int(time.Since(started)/requestInterval)
	if got > maxRequests {
		t.Errorf("%d peer requests; want at most %d", got, maxRequests)
	}
}

// TestForgedPeerProbesAreBounded: probes that claim to come from bob
// (whose ID is public) but are signed by other keys, from addresses that
// are not his, cost alice few signature checks, and bob still connects.
func TestForgedPeerProbesAreBounded(t *testing.T) {
	const floodFor = 2 * time.Second
	alice := runNode(t, "alice", Events{})
	bob := newTestNode(t, "bob")
	alice.AddPeer(bob.info()) // bob does not know alice yet
	claim := [32]byte(bob.ID())
	prober := sessiontest.Prober{Target: loopbackOf(alice), To: alice.ID(), Name: "bob", Claim: &claim}
	res := floodWhileConnecting(t, alice, bob, prober, floodFor, func() { bob.AddPeer((&testNode{Node: alice}).info()) })
	t.Logf("%d forged probes in bob's name from %d addresses in %s: %d signature checks; bob connected in %s",
		res.sent, floodSources, floodFor, res.checks, res.connectedIn.Round(time.Millisecond))
	maxChecks := claimedBurst + int(claimedRate*res.lasted.Seconds()) + legitChecks
	if res.checks > maxChecks {
		t.Errorf("%d signature checks; want at most %d", res.checks, maxChecks)
	}
}

// TestStrangerNamedLikeAPeer: a stranger that calls itself like a peer
// (case aside) gets its name marked, so its request cannot pass for that
// peer; the marked name is still a valid name.
func TestStrangerNamedLikeAPeer(t *testing.T) {
	long := strings.Repeat("é", MaxNameLen/2) // 64 bytes, two per letter
	n := runNode(t, "alice", Events{})
	for i, name := range []string{"bob", "Zoë", long, "carol", "carol" + sameNameMark} {
		n.AddPeer(PeerInfo{ID: mustID(t, byte(i+1)), Name: name})
	}
	tests := []struct{ name, want string }{
		{"", ""},
		{"mallory", "mallory"},
		{"bob", "bob" + sameNameMark},
		{"BOB", "BOB" + sameNameMark},
		{"zoë", "zoë" + sameNameMark},
		{long, truncateUTF8(long, MaxNameLen-len(sameNameMark)) + sameNameMark},
		{"carol", ""}, // even the marked name is taken
	}
	for _, tc := range tests {
		n.mu.Lock()
		got := n.unclaimedNameLocked(tc.name)
		n.mu.Unlock()
		if got != tc.want {
			t.Errorf("name %q: got %q, want %q", tc.name, got, tc.want)
		}
		if got != "" && CheckName(got) != nil {
			t.Errorf("name %q: marked %q is not a valid name: %v", tc.name, got, CheckName(got))
		}
	}

	// Through the wire: a stranger's probe named "Bob".
	var mu sync.Mutex
	var reqs []PeerRequest
	alice := runNode(t, "alice", Events{PeerRequest: func(r PeerRequest) {
		mu.Lock()
		defer mu.Unlock()
		reqs = append(reqs, r)
	}})
	alice.AddPeer(PeerInfo{ID: mustID(t, 1), Name: "bob"})
	mallory := newRawPeer(t, "127.0.0.1")
	mallory.send(t, "127.0.0.1", mallory.probeNamed(t, alice, probe.Request, 5, time.Now(), "Bob"), alice)
	testutil.WaitFor(t, 5*time.Second, "mallory's request", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reqs) > 0
	})
	if reqs[0].Name != "Bob"+sameNameMark {
		t.Fatalf("request named %q", reqs[0].Name)
	}
}

// retryCounter counts the QUIC Retry packets a client socket receives.
type retryCounter struct {
	net.PacketConn
	retries *atomic.Int64
}

func (c retryCounter) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(b)
	// QUIC v1 long header of type 3 (Retry): the top four bits set.
	if err == nil && n > 0 && b[0]&0xf0 == 0xf0 {
		c.retries.Add(1)
	}
	return n, addr, err
}

// TestHandshakeFloodNeedsRetry: strangers start QUIC handshakes with
// alice faster than peers ever do. Past a rate, alice asks each to prove
// its address with a Retry before she spends a handshake on it, and
// refuses a proven address that keeps dialing; bob still connects.
func TestHandshakeFloodNeedsRetry(t *testing.T) {
	const (
		sources   = 4
		perSource = 40 // well past handshakeSourceBurst
		parallel  = 16
	)
	alice := runNode(t, "alice", Events{})
	var retries atomic.Int64
	var transports []*quic.Transport
	for _, c := range sessiontest.Sources(t, 2, sources) {
		tr := &quic.Transport{Conn: retryCounter{c, &retries}}
		t.Cleanup(func() { tr.Close() })
		transports = append(transports, tr)
	}
	stranger, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := selfSignedCert(stranger)
	if err != nil {
		t.Fatal(err)
	}
	target := net.UDPAddrFromAddrPort(loopbackOf(alice))
	conf := &quic.Config{HandshakeIdleTimeout: 2 * time.Second}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range sources * perSource {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			if conn, err := transports[i%sources].Dial(ctx, target, clientTLS(cert, alice.ID()), conf); err == nil {
				conn.CloseWithError(0, "")
			}
		})
	}
	wg.Wait()
	t.Logf("%d handshakes from %d addresses: %d Retry packets received, alice asked %d times, refused %d proven handshakes",
		sources*perSource, sources, retries.Load(), alice.retries.Load(), alice.refusedHandshakes.Load())
	if retries.Load() == 0 || alice.retries.Load() == 0 {
		t.Error("no Retry during a handshake flood")
	}
	if alice.refusedHandshakes.Load() == 0 {
		t.Error("no proven address refused for dialing too often")
	}
	bob := newTestNode(t, "bob")
	bob.AddPeer((&testNode{Node: alice}).info())
	alice.AddPeer(bob.info())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := bob.SendMessage(ctx, alice.ID(), "still here"); err != nil {
		t.Fatalf("bob after the flood: %v", err)
	}
}
