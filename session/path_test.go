package session

import (
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/testutil"
)

func TestPathPriorities(t *testing.T) {
	order := []PathKind{PathLAN, PathDirect, PathRelay, "carrier pigeon"}
	for i := 1; i < len(order); i++ {
		better, worse := Path{Kind: order[i-1]}, Path{Kind: order[i]}
		if !better.Better(worse) || worse.Better(better) || better.Better(better) {
			t.Errorf("%s (P%d) must beat %s (P%d), and only it", better.Kind, better.Priority(), worse.Kind, worse.Priority())
		}
	}
	p := Path{Kind: PathLAN, Addr: netip.MustParseAddrPort("192.168.1.20:41641"), RTT: 1234 * time.Microsecond}
	if got, want := p.String(), "lan 192.168.1.20:41641 P10 rtt=1.23ms"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	p.RTT = 0
	if got, want := p.String(), "lan 192.168.1.20:41641 P10"; got != want {
		t.Errorf("String() unmeasured = %q, want %q", got, want)
	}
}

func TestPathSet(t *testing.T) {
	ap := netip.MustParseAddrPort
	udp := func(a netip.AddrPort) route { return route{LocalUDP, a} }
	locals := []Local{LocalUDP}
	public, lan, lan2 := ap("203.0.113.7:41641"), ap("192.168.1.20:41641"), ap("10.0.0.5:41641")
	var s pathSet
	now := time.Unix(1000, 0)
	s.learn(now, Candidate{Addr: public, Source: SourceConnString}, Candidate{Addr: lan, Kind: PathLAN, Source: SourceConnString})
	s.learn(now, Candidate{Addr: lan, Kind: PathLAN, Source: SourceDHT}) // known already: no duplicate
	for i := range maxReflexive + 2 {
		s.addReflexive(udp(netip.AddrPortFrom(netip.MustParseAddr("198.51.100.1"), uint16(1000+i))), now)
	}
	s.addReflexive(udp(public), now) // known: not reflexive too
	all := s.all(locals)
	if len(all) != 2+maxReflexive {
		t.Fatalf("%d paths %v; want the 2 known and the %d latest reflexive", len(all), all, maxReflexive)
	}
	if all[0].Kind != PathLAN || all[0].Addr != lan || all[1].Addr != public || all[1].Kind != PathDirect {
		t.Fatalf("paths %v: LAN first, then the known direct one", all)
	}
	if all[0].Source != SourceDHT || all[1].Source != SourceConnString || all[2].Source != SourceProbe {
		t.Fatalf("paths %v: sources are the latest news of each address", all)
	}
	if s.knowsIP(netip.MustParseAddr("198.51.100.1")) != true || s.findReflexive(udp(ap("198.51.100.1:1000"))) != nil {
		t.Fatal("the oldest reflexive address is kept, or the latest forgotten")
	}
	// A measured round trip ranks a path before unmeasured ones of its kind.
	s.noteRTT(udp(ap("198.51.100.1:1005")), time.Millisecond)
	if all := s.all(locals); all[1].Addr != ap("198.51.100.1:1005") || all[1].RTT != time.Millisecond {
		t.Fatalf("paths %v: the measured direct path comes first among direct ones", all)
	}
	current := s.path(udp(public))
	if better := s.betterThan(current, locals); len(better) != 1 || better[0].Addr != lan {
		t.Fatalf("better than %s: %v", current, better)
	}
	if better := s.betterThan(s.path(udp(lan)), locals); len(better) != 0 {
		t.Fatalf("better than the LAN path: %v", better)
	}
	// An address that becomes known as a host candidate is a LAN path.
	s.learn(now, Candidate{Addr: lan2, Kind: PathLAN, Source: SourceLAN})
	if got := s.path(udp(lan2)).Kind; got != PathLAN {
		t.Fatalf("%s is %s", lan2, got)
	}
	if !slices.ContainsFunc(s.betterThan(current, locals), func(p Path) bool { return p.Addr == lan2 }) {
		t.Fatal("a new LAN candidate is not a better path")
	}
}

// With a relay allocation, every candidate but LAN ones is also a path
// out of the relay, of kind relay; a peer-reflexive address seen on the
// relay is a path out of it only; a peer's relayed address is a relay
// path from anywhere; and a reflexive address the peer later names as
// its relay's becomes a relay path.
func TestPathSetWithRelay(t *testing.T) {
	ap := netip.MustParseAddrPort
	const turn Local = "turn:relay.example.com:3478"
	locals := []Local{LocalUDP, turn}
	public, lan, relayed := ap("203.0.113.7:41641"), ap("192.168.1.20:41641"), ap("198.51.100.4:50000")
	seenOnRelay, seenOnUDP := ap("203.0.113.7:60001"), ap("198.51.100.4:50001")
	var s pathSet
	now := time.Unix(1000, 0)
	s.learn(now, Candidate{Addr: public}, Candidate{Addr: lan, Kind: PathLAN}, Candidate{Addr: relayed, Kind: PathRelay})
	s.addReflexive(route{turn, seenOnRelay}, now)
	s.addReflexive(route{LocalUDP, seenOnUDP}, now)
	type want struct {
		r    route
		kind PathKind
	}
	var got []want
	for _, p := range s.all(locals) {
		got = append(got, want{p.route(), p.Kind})
	}
	wanted := []want{
		{route{LocalUDP, lan}, PathLAN},
		{route{LocalUDP, public}, PathDirect},
		{route{LocalUDP, seenOnUDP}, PathDirect},
		{route{turn, public}, PathRelay},
		{route{LocalUDP, relayed}, PathRelay},
		{route{turn, relayed}, PathRelay},
		{route{turn, seenOnRelay}, PathRelay},
	}
	if !slices.Equal(got, wanted) {
		t.Fatalf("paths\n%v\nwant\n%v", got, wanted)
	}
	if got := s.all([]Local{LocalUDP}); len(got) != 4 {
		t.Fatalf("without the relay: %v", got)
	}
	// The peer tells us that the address it probed from is its relay's.
	s.learn(now, Candidate{Addr: seenOnUDP, Kind: PathRelay, Source: SourceSession})
	if p := s.path(route{LocalUDP, seenOnUDP}); p.Kind != PathRelay || p.Source != SourceSession {
		t.Fatalf("after the peer named it: %s from %s", p, p.Source)
	}
	if len(s.reflexive) != 1 {
		t.Fatalf("the named address is still among the reflexive ones: %v", s.reflexive)
	}
	if got := s.remoteAddrs(); slices.Contains(got, lan) || len(got) != 4 {
		t.Fatalf("addresses for a relay to let in: %v", got)
	}
}

// The learned addresses are bounded: a peer that names more loses its
// oldest.
func TestPathSetIsBounded(t *testing.T) {
	var s pathSet
	for i := range maxLearned + 5 {
		s.learn(time.Unix(int64(i), 0), Candidate{Addr: netip.AddrPortFrom(netip.MustParseAddr("198.51.100.7"), uint16(2000+i)), Source: SourceSession})
	}
	if len(s.learned) != maxLearned || s.learned[0].Addr.Port() != 2005 {
		t.Fatalf("%d learned, the oldest %v", len(s.learned), s.learned[0].Addr)
	}
}

// AddCandidates teaches a node a peer's addresses from elsewhere.
func TestAddCandidates(t *testing.T) {
	n := startNode(t, NodeConfig{Name: "alice"})
	peer := NodeID{1}
	n.AddPeer(PeerInfo{ID: peer, Name: "bob", Candidates: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.9:4000")}})
	addr := netip.MustParseAddrPort("203.0.113.5:4001")
	if err := n.AddCandidates(peer, Candidate{Addr: addr, Source: SourceDHT}); err != nil {
		t.Fatal(err)
	}
	if err := n.AddCandidates(NodeID{2}, Candidate{Addr: addr}); !errors.Is(err, ErrNoPeer) {
		t.Fatalf("candidates for a stranger: %v", err)
	}
	st := n.Peers()[0]
	if len(st.Paths) != 2 || !slices.ContainsFunc(st.Paths, func(p Path) bool { return p.Addr == addr && p.Source == SourceDHT && p.Kind == PathDirect }) {
		t.Fatalf("paths %v", st.Paths)
	}
}

// SetExtraCandidates adds to the node's own candidates, and the owner
// hears each change once.
func TestExtraLocalCandidates(t *testing.T) {
	var mu sync.Mutex
	var heard [][]Candidate
	last := func() (int, []Candidate) {
		mu.Lock()
		defer mu.Unlock()
		if len(heard) == 0 {
			return 0, nil
		}
		return len(heard), heard[len(heard)-1]
	}
	n := startNode(t, NodeConfig{Name: "alice", Events: Events{LocalCandidates: func(c []Candidate) {
		mu.Lock()
		defer mu.Unlock()
		heard = append(heard, c)
	}}})
	testutil.WaitFor(t, 10*time.Second, "the first announcement (after NAT discovery)", func() bool { count, _ := last(); return count > 0 })
	relayed := Candidate{Addr: netip.MustParseAddrPort("198.18.0.4:50000"), Kind: PathRelay}
	n.SetExtraCandidates("relay", []Candidate{relayed})
	before, got := last()
	n.SetExtraCandidates("relay", []Candidate{relayed}) // no change
	if after, _ := last(); !slices.Contains(got, relayed) || after != before || !slices.Contains(n.LocalCandidates(), relayed) {
		t.Fatalf("heard %v (%d then %d times); local %v", got, before, after, n.LocalCandidates())
	}
	n.SetExtraCandidates("relay", nil)
	if count, got := last(); count != before+1 || slices.Contains(got, relayed) {
		t.Fatalf("after withdrawing: heard %v", got)
	}
}
