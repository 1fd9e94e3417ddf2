package lan

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/session"
	"github.com/punchdrop/punchdrop/testutil"
)

// bus is a simulated LAN: what one link sends, every link hears (its own
// included, as with multicast loopback), from the sender's address.
type bus struct {
	mu    sync.Mutex
	links []*busLink
	sent  [][]byte // every datagram, for tests to play back
}

type busLink struct {
	bus  *bus
	addr netip.AddrPort
	in   chan []byte
	from chan netip.AddrPort
}

func (b *bus) join(addr string) *busLink {
	l := &busLink{bus: b, addr: netip.MustParseAddrPort(addr), in: make(chan []byte, 64), from: make(chan netip.AddrPort, 64)}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.links = append(b.links, l)
	return l
}

// deliver hands b to every link as if from.
func (b *bus) deliver(d []byte, from netip.AddrPort) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.links {
		select {
		case l.in <- d:
			l.from <- from
		default:
		}
	}
}

func (l *busLink) send(d []byte) error {
	l.bus.mu.Lock()
	l.bus.sent = append(l.bus.sent, d)
	l.bus.mu.Unlock()
	l.bus.deliver(d, l.addr)
	return nil
}

func (l *busLink) refresh()     {}
func (l *busLink) close() error { return nil }

func (l *busLink) run(ctx context.Context, got func([]byte, netip.AddrPort)) {
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-l.in:
			got(d, <-l.from)
		}
	}
}

// heardLog records what a Service's owner heard.
type heardLog struct {
	mu    sync.Mutex
	calls [][]session.Candidate
}

func (h *heardLog) found(_ session.NodeID, cands []session.Candidate) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, cands)
}

// last returns what was heard last and how many times anything was.
func (h *heardLog) last() ([]session.Candidate, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.calls) == 0 {
		return nil, 0
	}
	return h.calls[len(h.calls)-1], len(h.calls)
}

type testService struct {
	*Service
	id    session.NodeID
	priv  []byte
	heard *heardLog
}

func startService(t *testing.T, b *bus, addr string) *testService {
	t.Helper()
	id, priv, _ := newNode(t)
	h := &heardLog{}
	s, err := New(Config{Key: priv, Found: h.found, link: b.join(addr), Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &testService{Service: s, id: id, priv: priv, heard: h}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b[:len(b)-1]))
	return len(b), nil
}

func lanCands(s ...string) []session.Candidate {
	var out []session.Candidate
	for _, a := range addrs(s...) {
		out = append(out, session.Candidate{Addr: a, Kind: session.PathLAN, Source: session.SourceLAN})
	}
	return out
}

// Peers on one LAN hear each other's LAN addresses at once, and again at
// once when they change; a stranger hears nothing it can read.
func TestPeersHearEachOther(t *testing.T) {
	b := &bus{}
	alice, bob, eve := startService(t, b, "192.168.1.20:24680"), startService(t, b, "192.168.1.21:24680"), startService(t, b, "192.168.1.66:24680")
	alice.SetPeers([]session.NodeID{bob.id})
	bob.SetPeers([]session.NodeID{alice.id})
	eve.SetPeers([]session.NodeID{bob.id}) // eve knows bob, not alice
	alice.Announce([]session.Candidate{
		{Addr: netip.MustParseAddrPort("198.18.0.11:41641"), Kind: session.PathDirect}, // not announced: not a LAN one
		{Addr: netip.MustParseAddrPort("192.168.1.20:41641"), Kind: session.PathLAN},
	})
	want := lanCands("192.168.1.20:41641")
	testutil.WaitFor(t, 2*time.Second, "bob to hear alice", func() bool { got, _ := bob.heard.last(); return slices.Equal(got, want) })
	start := time.Now()
	alice.Announce([]session.Candidate{{Addr: netip.MustParseAddrPort("192.168.1.30:41641"), Kind: session.PathLAN}})
	want = lanCands("192.168.1.30:41641")
	testutil.WaitFor(t, 2*time.Second, "bob to hear alice's new address", func() bool { got, _ := bob.heard.last(); return slices.Equal(got, want) })
	if took := time.Since(start); took > announceInterval/2 {
		t.Errorf("heard the change after %s, not at once", took)
	}
	if _, n := eve.heard.last(); n != 0 {
		t.Errorf("eve heard %d announcements of alice's", n)
	}
}

// Played back, an announcement is taken once; one too far from the
// listener's clock not at all.
func TestReplayAndSkew(t *testing.T) {
	b := &bus{}
	bob := startService(t, b, "192.168.1.21:24680")
	id, priv, _ := newNode(t)
	bob.SetPeers([]session.NodeID{id})
	from := netip.MustParseAddrPort("192.168.1.20:24680")
	send := func(at time.Time, addr string) {
		d, err := Seal(priv, Announcement{Time: at, Addrs: addrs(addr)})
		if err != nil {
			t.Fatal(err)
		}
		b.deliver(d, from)
	}
	now := time.Now()
	send(now.Add(-MaxSkew-time.Second), "192.168.1.40:41641")
	send(now.Add(MaxSkew+time.Second), "192.168.1.41:41641")
	send(now, "192.168.1.20:41641")
	testutil.WaitFor(t, 2*time.Second, "bob to hear the timely one", func() bool { _, n := bob.heard.last(); return n == 1 })
	send(now.Add(-time.Second), "192.168.1.50:41641") // older than the one taken: a replay
	send(now.Add(time.Second), "192.168.1.60:41641")  // in order after it on the bus
	testutil.WaitFor(t, 2*time.Second, "bob to hear the newer one", func() bool { _, n := bob.heard.last(); return n == 2 })
	if got, _ := bob.heard.last(); !slices.Equal(got, lanCands("192.168.1.60:41641")) {
		t.Fatalf("bob heard %v after the replay, want the newer one", got)
	}
}

// Announcements from one source beyond its rate are not even opened.
func TestSourceRate(t *testing.T) {
	s, err := New(Config{Key: mustKey(t), Found: func(session.NodeID, []session.Candidate) {}})
	if err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddr("192.168.1.66")
	allowed := 0
	for range 100 {
		if s.allow(src) {
			allowed++
		}
	}
	if allowed != sourceBurst {
		t.Fatalf("%d of 100 allowed at once from one source, want %d", allowed, sourceBurst)
	}
	if !s.allow(netip.MustParseAddr("192.168.1.67")) {
		t.Fatal("another source was refused")
	}
}

func mustKey(t *testing.T) []byte {
	_, priv, _ := newNode(t)
	return priv
}
