package finder

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/dht"
	"github.com/punchdrop/punchdrop/session"
	"github.com/punchdrop/punchdrop/testutil"
)

// startDHT runs n DHT nodes on loopback (127.0.0.2 and up), each but the
// first bootstrapped from the one before, and returns their addresses.
func startDHT(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	for i := range n {
		cfg := dht.Config{Listen: fmt.Sprintf("127.0.0.%d:0", 2+i), Logger: testLogger(t, fmt.Sprintf("dht%d", i))}
		if i > 0 {
			cfg.Bootstrap = addrs[i-1:]
		}
		node, err := dht.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		<-node.Bootstrapped()
		addrs = append(addrs, node.Addr().String())
	}
	return addrs
}

func testLogger(t *testing.T, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("who", name)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b[:len(b)-1]))
	return len(b), nil
}

// owner is what a Service's owner keeps: the sequence numbers held, and
// what was found.
type owner struct {
	mu    sync.Mutex
	held  map[session.NodeID]int64
	found map[session.NodeID][]session.Candidate
	hard  map[session.NodeID]bool // what the last record found said
}

func (o *owner) Held(id session.NodeID) int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.held[id]
}

func (o *owner) Found(id session.NodeID, seq int64, cands []session.Candidate, hardNAT bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.held[id] = seq
	o.found[id] = cands
	o.hard[id] = hardNAT
}

func (o *owner) hardOf(id session.NodeID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hard[id]
}

func (o *owner) foundOf(id session.NodeID) []session.Candidate {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.found[id]
}

// startService runs a Service on loopback for the test, with lookups
// quick to start and to repeat.
func startService(t *testing.T, name string, bootstrap []string) (*Service, *owner, session.NodeID) {
	t.Helper()
	id, key := newKey(t)
	o := &owner{held: map[session.NodeID]int64{}, found: map[session.NodeID][]session.Candidate{}, hard: map[session.NodeID]bool{}}
	s, err := New(Config{Key: key, Bootstrap: bootstrap, Logger: testLogger(t, name), Held: o.Held, Found: o.Found,
		listen: "127.0.0.1:0", lookupAfter: 50 * time.Millisecond, backoff: func(int) time.Duration { return 200 * time.Millisecond }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, o, id
}

// TestServiceOverPrivateDHT: alice publishes, bob, who cannot reach her,
// finds what she published, and again when it changes (a new address,
// then the same one behind a NAT that maps a new port per destination);
// once connected he stops looking.
func TestServiceOverPrivateDHT(t *testing.T) {
	bootstrap := startDHT(t, 3)
	alice, _, aliceID := startService(t, "alice", bootstrap)
	bob, bobs, _ := startService(t, "bob", bootstrap)
	first := session.Candidate{Addr: netip.MustParseAddrPort("198.18.0.11:4000"), Kind: session.PathDirect}
	alice.Publish([]session.Candidate{first, {Addr: netip.MustParseAddrPort("198.19.1.10:4000"), Kind: session.PathLAN}}, false)
	testutil.WaitFor(t, 10*time.Second, "alice's first put", func() bool { return alice.Status().Publish.Stored > 0 })

	bob.Track(aliceID)
	want := []session.Candidate{{Addr: first.Addr, Kind: session.PathDirect, Source: session.SourceDHT}}
	testutil.WaitFor(t, 10*time.Second, "bob to find alice's public address", func() bool { return slices.Equal(bobs.foundOf(aliceID), want) })
	if st := bob.PeerLookup(aliceID); st.Result != ResultFound || st.Candidates != 1 || st.Stats.Answered == 0 {
		t.Fatalf("bob's lookup: %+v", st)
	}
	testutil.WaitFor(t, 5*time.Second, "bob's lookup to find nothing newer", func() bool { return bob.PeerLookup(aliceID).Result == ResultNotNewer })

	moved := session.Candidate{Addr: netip.MustParseAddrPort("198.18.0.12:4000"), Kind: session.PathDirect}
	alice.Publish([]session.Candidate{moved}, false)
	want = []session.Candidate{{Addr: moved.Addr, Kind: session.PathDirect, Source: session.SourceDHT}}
	testutil.WaitFor(t, 10*time.Second, "bob to find alice's new address", func() bool { return slices.Equal(bobs.foundOf(aliceID), want) })
	if bobs.hardOf(aliceID) {
		t.Fatal("bob found alice's NAT hard before she said so")
	}

	// Her NAT turns out to map per destination: the same candidates,
	// flagged, are a new record, and bob finds the flag.
	seq := bob.PeerLookup(aliceID).Seq
	alice.Publish([]session.Candidate{moved}, true)
	testutil.WaitFor(t, 10*time.Second, "bob to find alice's NAT hard", func() bool { return bobs.hardOf(aliceID) })
	if st := bob.PeerLookup(aliceID); st.Seq <= seq || !strings.Contains(st.Detail, "new port per destination") {
		t.Fatalf("bob's lookup of the flagged record: %+v (the last was %d)", st, seq)
	}
	if st := alice.Status().Publish; !st.HardNAT || st.Err != "" {
		t.Fatalf("alice's put: %+v", st)
	}
	if !slices.Equal(bobs.foundOf(aliceID), want) {
		t.Fatalf("bob found %v with the flag, want %v", bobs.foundOf(aliceID), want)
	}

	bob.SetConnected(aliceID, true)
	last := bob.PeerLookup(aliceID).At
	time.Sleep(time.Second)
	if at := bob.PeerLookup(aliceID).At; !at.Equal(last) {
		t.Fatalf("bob looked alice up at %v while connected", at)
	}
	st := bob.Status()
	if !st.Running || !st.Bootstrapped || !st.Reachable() || st.Node.Sent.Packets == 0 {
		t.Fatalf("bob's status: %+v", st)
	}
}

// TestServiceWithoutDHT: with nobody at the bootstrap address, a lookup
// says the DHT is unreachable, and publishing fails with a reason.
func TestServiceWithoutDHT(t *testing.T) {
	svc, _, _ := startService(t, "alice", []string{"127.0.0.1:9"})
	svc.Publish([]session.Candidate{{Addr: netip.MustParseAddrPort("198.18.0.11:4000"), Kind: session.PathDirect}}, false)
	peer, _ := newKey(t)
	svc.Track(peer)
	testutil.WaitFor(t, 30*time.Second, "a lookup", func() bool { return !svc.PeerLookup(peer).At.IsZero() })
	if st := svc.PeerLookup(peer); st.Result != ResultUnreachable || st.Detail == "" {
		t.Fatalf("lookup without a DHT: %+v", st)
	}
	testutil.WaitFor(t, 30*time.Second, "a failed put", func() bool { return svc.Status().Publish.Err != "" })
	if st := svc.Status(); st.Reachable() || !st.Bootstrapped {
		t.Fatalf("status without a DHT: %+v", st)
	}
}
