package session

import (
	"net/netip"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/testutil"
)

// TestDualStackNode: a node on ListenUDP's dual-stack socket classifies
// its NAT through an IPv4 STUN server (whose answers arrive from an
// IPv4-mapped address) as it would on an IPv4 socket; its global IPv6
// address is a direct candidate and a public address of its connection
// string, a unique-local one a LAN candidate; a dual-stack peer connects
// to it over IPv6 and hears of that address over the session; an
// IPv4-only peer connects to it over IPv4, and both sides see plain IPv4
// addresses, never ::ffff:a.b.c.d. Only loopback is sent to: the
// documentation addresses are never tried, as the peers are told of them
// after connecting.
func TestDualStackNode(t *testing.T) {
	conn, err := ListenUDP(0)
	if err != nil {
		t.Fatal(err)
	}
	if !addrPort(conn.LocalAddr()).Addr().Is6() {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no IPv6 on this host: ListenUDP gave %s", conn.LocalAddr())
		}
		t.Skipf("no IPv6 on this host: ListenUDP gave %s", conn.LocalAddr())
	}
	port := addrPort(conn.LocalAddr()).Port()
	v4lan, v6global, v6ula := netip.AddrPortFrom(netip.MustParseAddr("192.168.1.20"), port),
		netip.AddrPortFrom(netip.MustParseAddr("2001:db8::20"), port), netip.AddrPortFrom(netip.MustParseAddr("fd00::20"), port)
	lan := &fakeLAN{}
	lan.set(v4lan, v6global, v6ula)
	var mu sync.Mutex
	a := &testNode{Node: startNode(t, NodeConfig{Name: "alice", Conn: conn, STUNServers: []string{serveSTUN(t)}, lanAddrs: lan.get})}
	testutil.WaitFor(t, 10*time.Second, "NAT discovery on the dual-stack socket", func() bool { return a.NAT().PublicAddr.IsValid() })
	public := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)
	if got := a.NAT().PublicAddr; got != public {
		t.Fatalf("STUN saw the node at %s, want %s (unmapped)", got, public)
	}
	wantCands := []Candidate{{Addr: public, Kind: PathDirect}, {Addr: v4lan, Kind: PathLAN}, {Addr: v6global, Kind: PathDirect}, {Addr: v6ula, Kind: PathLAN}}
	if got := a.LocalCandidates(); !slices.Equal(got, wantCands) {
		t.Fatalf("candidates %v, want %v", got, wantCands)
	}
	cs := a.ConnString()
	if cs.Public != public || !slices.Equal(cs.Direct, []netip.AddrPort{v6global}) || !slices.Equal(cs.LAN, []netip.AddrPort{v4lan, v6ula}) {
		t.Fatalf("connection string %s", cs)
	}

	// A dual-stack peer, reached over IPv6 (loopback).
	bconn, err := ListenUDP(0)
	if err != nil {
		t.Fatal(err)
	}
	var told []Candidate
	b := &testNode{Node: startNode(t, NodeConfig{Name: "bob", Conn: bconn, lanAddrs: func() []netip.AddrPort { return nil },
		Events: Events{PeerCandidates: func(_ NodeID, cands []Candidate) { mu.Lock(); told = append(told, cands...); mu.Unlock() }}})}
	at6 := func(n *Node) netip.AddrPort {
		return netip.AddrPortFrom(netip.IPv6Loopback(), addrPort(n.conn.LocalAddr()).Port())
	}
	a.AddPeer(PeerInfo{ID: b.ID(), Name: "bob", Candidates: []netip.AddrPort{at6(b.Node)}})
	b.AddPeer(PeerInfo{ID: a.ID(), Name: "alice", Candidates: []netip.AddrPort{at6(a.Node)}})
	testutil.WaitFor(t, 10*time.Second, "alice and bob to connect over IPv6", func() bool {
		return stateOf(a, b.ID()).State == StateConnected && stateOf(b, a.ID()).State == StateConnected
	})
	if got := stateOf(b, a.ID()).Addr; got != at6(a.Node) {
		t.Fatalf("bob's session runs to %s, want %s", got, at6(a.Node))
	}
	testutil.WaitFor(t, 5*time.Second, "bob to hear alice's global IPv6 address", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(told, Candidate{Addr: v6global, Kind: PathDirect, Source: SourceSession})
	})

	// An IPv4-only peer, reached over IPv4: plain addresses on both sides.
	c := newTestNode(t, "carol")
	a.AddPeer(c.info())
	c.AddPeer(PeerInfo{ID: a.ID(), Name: "alice", Candidates: []netip.AddrPort{public}})
	testutil.WaitFor(t, 10*time.Second, "alice and carol to connect over IPv4", func() bool {
		return stateOf(a, c.ID()).State == StateConnected && stateOf(c, a.ID()).State == StateConnected
	})
	if got, want := stateOf(a, c.ID()).Addr, c.addr(); got != want || !got.Addr().Is4() {
		t.Fatalf("alice's session with carol runs to %s, want %s", got, want)
	}
	if got := stateOf(c, a.ID()).Addr; got != public {
		t.Fatalf("carol's session runs to %s, want %s", got, public)
	}
}
