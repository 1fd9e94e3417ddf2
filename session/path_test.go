package session

import (
	"net/netip"
	"slices"
	"testing"
	"time"
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
	public, lan, lan2 := ap("203.0.113.7:41641"), ap("192.168.1.20:41641"), ap("10.0.0.5:41641")
	var s pathSet
	s.add([]netip.AddrPort{public, lan}, []netip.AddrPort{lan})
	s.add([]netip.AddrPort{lan}, nil) // known already: no duplicate
	for i := range maxReflexive + 2 {
		s.addReflexive(netip.AddrPortFrom(netip.MustParseAddr("198.51.100.1"), uint16(1000+i)))
	}
	s.addReflexive(public) // known: not reflexive too
	all := s.all()
	if len(all) != 2+maxReflexive {
		t.Fatalf("%d paths %v; want the 2 known and the %d latest reflexive", len(all), all, maxReflexive)
	}
	if all[0].Kind != PathLAN || all[0].Addr != lan || all[1].Addr != public {
		t.Fatalf("paths %v: LAN first, then the known direct one", all)
	}
	if s.knowsIP(netip.MustParseAddr("198.51.100.1")) != true || s.find(ap("198.51.100.1:1000")) != nil {
		t.Fatal("the oldest reflexive address is kept, or the latest forgotten")
	}
	// A measured round trip ranks a path before unmeasured ones of its kind.
	s.noteRTT(ap("198.51.100.1:1005"), time.Millisecond)
	if all := s.all(); all[1].Addr != ap("198.51.100.1:1005") || all[1].RTT != time.Millisecond {
		t.Fatalf("paths %v: the measured direct path comes first among direct ones", all)
	}
	current := s.path(public)
	if better := s.betterThan(current); len(better) != 1 || better[0].Addr != lan {
		t.Fatalf("better than %s: %v", current, better)
	}
	if better := s.betterThan(s.path(lan)); len(better) != 0 {
		t.Fatalf("better than the LAN path: %v", better)
	}
	// An address that becomes known as a host candidate is a LAN path.
	s.add([]netip.AddrPort{lan2}, []netip.AddrPort{lan2})
	if got := s.path(lan2).Kind; got != PathLAN {
		t.Fatalf("%s is %s", lan2, got)
	}
	if !slices.ContainsFunc(s.betterThan(current), func(p Path) bool { return p.Addr == lan2 }) {
		t.Fatal("a new LAN candidate is not a better path")
	}
}
