package session

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/testutil"
)

// fakeLAN is a node's list of LAN addresses that a test changes, as a
// new DHCP lease would.
type fakeLAN struct {
	mu    sync.Mutex
	addrs []netip.AddrPort
}

func (f *fakeLAN) set(addrs ...netip.AddrPort) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addrs = addrs
}

func (f *fakeLAN) get() []netip.AddrPort {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.addrs)
}

// TestOwnAddressChange: when a node's LAN address changes, its connected
// peer hears the new one within seconds, and the session, which may have
// left from the old address, is made again at once.
func TestOwnAddressChange(t *testing.T) {
	conn := listenUDP(t, 0)
	port := addrPort(conn.LocalAddr()).Port()
	before, after := netip.AddrPortFrom(netip.MustParseAddr("198.51.100.1"), port), netip.AddrPortFrom(netip.MustParseAddr("198.51.100.2"), port)
	lan := &fakeLAN{}
	lan.set(before)
	// A STUN server that answers at once: the address checks start once
	// the first NAT discovery is over.
	a := &testNode{Node: startNode(t, NodeConfig{Name: "alice", Conn: conn, STUNServers: []string{serveSTUN(t)}, lanAddrs: lan.get})}
	var mu sync.Mutex
	var told []Candidate
	b := &testNode{Node: startNode(t, NodeConfig{Name: "bob", Events: Events{PeerCandidates: func(_ NodeID, cands []Candidate) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, cands...)
	}}})}
	a.AddPeer(b.info())
	b.AddPeer(a.info())
	testutil.WaitFor(t, 10*time.Second, "alice and bob to connect", func() bool {
		return stateOf(a, b.ID()).State == StateConnected && stateOf(b, a.ID()).State == StateConnected
	})
	first := a.peer(b.ID()).session()
	start := time.Now()
	lan.set(after)
	heard := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(told, Candidate{Addr: after, Kind: PathLAN, Source: SourceSession})
	}
	testutil.WaitFor(t, 3*ifaceCheckInterval, "bob to hear alice's new address", heard)
	testutil.WaitFor(t, 3*ifaceCheckInterval, "a new session", func() bool {
		s := a.peer(b.ID()).session()
		return s != nil && s != first && stateOf(b, a.ID()).State == StateConnected
	})
	if first.conn.Context().Err() == nil {
		t.Fatal("the session from before the change is still open")
	}
	t.Logf("told and connected again %s after the change", time.Since(start).Round(time.Millisecond))
}
