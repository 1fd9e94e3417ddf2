package session

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/nat"
	"github.com/punchdrop/punchdrop/simnet"
	"github.com/punchdrop/punchdrop/testutil"
)

// simPunchTimeout is how long nodes on the simulated network probe before
// they give up: the simulation has no delay unless a test adds some, so
// every pairing that can connect does so within a few probe rounds.
const simPunchTimeout = 3 * time.Second

// simWorld is a simulated internet with a STUN server on it.
type simWorld struct {
	net  *simnet.Net
	stun []string
	// punchTimeout, when set, is the nodes' instead of simPunchTimeout.
	punchTimeout time.Duration
}

func newSimWorld(t testing.TB) *simWorld {
	t.Helper()
	n := simnet.New(simnet.Config{Seed: 1})
	srv, err := n.AddSTUNServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &simWorld{net: n, stun: []string{srv.Addr().String()}}
}

// config configures a node named name on a new host of site.
func (w *simWorld) config(t testing.TB, site *simnet.Site, name string) NodeConfig {
	t.Helper()
	host := site.AddHost()
	conn, err := host.Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	listen := func() (net.PacketConn, error) { return host.Listen(0) }
	return NodeConfig{Name: name, Conn: conn, STUNServers: w.stun, PunchTimeout: cmp.Or(w.punchTimeout, simPunchTimeout), ListenSpare: listen}
}

// node runs a recording node on a new host of site, once it discovered
// its NAT.
func (w *simWorld) node(t testing.TB, site *simnet.Site, name string) *testNode {
	t.Helper()
	n := recordingNode(t, w.config(t, site, name))
	waitNAT(t, n.Node)
	return n
}

// waitNAT waits for n's NAT discovery, so that its connection string
// carries its public address.
func waitNAT(t testing.TB, n *Node) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, n.name()+"'s NAT discovery", func() bool { return n.NAT().PublicAddr.IsValid() })
}

// infoFrom is what a node knows of a peer whose connection string it was
// given, as the agent makes it.
func infoFrom(cs ConnString) PeerInfo {
	info := PeerInfo{ID: cs.ID, Name: cs.Name, LAN: cs.LAN, Relay: cs.Relay, HardNAT: cs.HardNAT}
	if cs.Public.IsValid() {
		info.Candidates = append(info.Candidates, cs.Public)
	}
	info.Candidates = append(info.Candidates, cs.LAN...)
	info.Candidates = append(info.Candidates, cs.Relay...)
	return info
}

// introduce gives each node the other's connection string.
func introduce(a, b *testNode) {
	a.AddPeer(infoFrom(b.ConnString()))
	b.AddPeer(infoFrom(a.ConnString()))
}

// directPossible says whether hole punching can work between two NAT
// kinds, as the kernel lab shows (e2e.directPossible): two symmetric NATs
// leave no path, since neither side's port for the other can be found.
// Address-restricted filters by address only, so the symmetric side's new
// port gets through; a port-restricted one needs birthday probing.
func directPossible(x, y simnet.Kind) bool {
	return x != simnet.Symmetric || y != simnet.Symmetric
}

// birthdayNeeded says whether only birthday probing connects the two
// kinds: a symmetric NAT facing a port-restricted one.
func birthdayNeeded(x, y simnet.Kind) bool {
	return x == simnet.Symmetric && y == simnet.PortRestricted || x == simnet.PortRestricted && y == simnet.Symmetric
}

// birthdayPunchTimeout lets a punch run three rounds of birthday probing
// (birthday.go): each meets the spares with ≈ 98 %, so a pairing that
// needs it fails to connect once in 10⁵ runs.
const birthdayPunchTimeout = birthdayDelay + birthdayRounds*(birthdayPace+birthdayRoundGap) + 2*time.Second

// TestSimulatedPairings connects two nodes behind every pairing of NAT
// kinds on the simulated network: those the kernel lab connects connect
// (directly) and exchange messages; the others both say plainly that the
// peer cannot be reached.
func TestSimulatedPairings(t *testing.T) {
	kinds := simnet.Kinds
	for i, x := range kinds {
		for _, y := range kinds[i:] {
			t.Run(fmt.Sprintf("%s-%s", x, y), func(t *testing.T) {
				t.Parallel()
				w := newSimWorld(t)
				timeout := simPunchTimeout
				if birthdayNeeded(x, y) {
					w.punchTimeout, timeout = birthdayPunchTimeout, birthdayPunchTimeout
				}
				a := w.node(t, w.net.AddSite(x.NAT()), "alice")
				b := w.node(t, w.net.AddSite(y.NAT()), "bob")
				start := time.Now()
				introduce(a, b)
				if !directPossible(x, y) {
					for _, side := range [][2]*testNode{{a, b}, {b, a}} {
						testutil.WaitFor(t, 2*simPunchTimeout, side[0].name()+" to give up", func() bool {
							st := stateOf(side[0], side[1].ID())
							return st.State == StateOffline && strings.Contains(st.Error, ErrUnreachable.Error())
						})
					}
					t.Logf("%s ↔ %s: reported unreachable after %s", x, y, time.Since(start).Round(time.Millisecond))
					ctx, cancel := context.WithTimeout(t.Context(), time.Second)
					defer cancel()
					if err := a.SendMessage(ctx, b.ID(), "hello?"); err == nil {
						t.Fatal("a message went through although no path exists")
					}
					return
				}
				for _, side := range [][2]*testNode{{a, b}, {b, a}} {
					testutil.WaitFor(t, 2*timeout, side[0].name()+" to connect", func() bool {
						return stateOf(side[0], side[1].ID()).State == StateConnected
					})
				}
				took := time.Since(start)
				exchange(t, a, b)
				st := stateOf(a, b.ID())
				if st.Path != PathDirect {
					t.Fatalf("alice sees %+v, want a direct path", st)
				}
				// Birthday probing leaves the hard side's session on a
				// spare, and no other spare open.
				for _, side := range [][2]*testNode{{a, b}, {b, a}} {
					onSpare := side[0].peer(side[1].ID()).session().Path.Local.isSpare()
					hard := birthdayNeeded(x, y) && side[0].NAT().Mapping != nat.EndpointIndependent
					if onSpare != hard {
						t.Fatalf("%s's session runs out of %q; birthday probing's hard side: %v", side[0].name(), side[0].peer(side[1].ID()).session().Path.Local, hard)
					}
					want := 0
					if hard {
						want = 1
					}
					testutil.WaitFor(t, 2*time.Second, side[0].name()+" to close the other spares", func() bool {
						return side[0].spareCount() == want
					})
				}
				t.Logf("%s ↔ %s: connected %s in %s", x, y, a.peer(b.ID()).session(), took.Round(time.Millisecond))
			})
		}
	}
}

// exchange sends a message each way and checks it arrived.
func exchange(t testing.TB, a, b *testNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, side := range [][2]*testNode{{a, b}, {b, a}} {
		text := fmt.Sprintf("hello %s from %s", side[1].name(), side[0].name())
		if err := side[0].SendMessage(ctx, side[1].ID(), text); err != nil {
			t.Fatalf("%s → %s: %v", side[0].name(), side[1].name(), err)
		}
		if msgs, _ := side[1].got(); len(msgs) == 0 || msgs[len(msgs)-1] != text {
			t.Fatalf("%s got %q", side[1].name(), msgs)
		}
	}
}

// waitPath waits until n's session with peer runs on a path of kind.
func waitPath(t testing.TB, n *testNode, peer NodeID, kind PathKind, timeout time.Duration) PeerStatus {
	t.Helper()
	var st PeerStatus
	testutil.WaitFor(t, timeout, fmt.Sprintf("%s's session on a %s path", n.name(), kind), func() bool {
		st = stateOf(n, peer)
		return st.State == StateConnected && st.Path == kind
	})
	return st
}

// hairpinSite adds a site whose router hairpins, so that two of its
// hosts reach each other through its public address (a direct path) as
// well as over the LAN.
func (w *simWorld) hairpinSite() *simnet.Site {
	nat := simnet.PortRestricted.NAT()
	nat.Hairpin = true
	return w.net.AddSite(nat)
}

// sameLAN runs two nodes on one hairpinning site.
func sameLAN(t *testing.T) (site *simnet.Site, a, b *testNode) {
	t.Helper()
	w := newSimWorld(t)
	site = w.hairpinSite()
	return site, w.node(t, site, "alice"), w.node(t, site, "bob")
}

// directFirst introduces a and b without their LAN addresses, so that
// their first session runs through the router.
func directFirst(a, b *testNode) {
	for _, pair := range [][2]*testNode{{a, b}, {b, a}} {
		cs := pair[1].ConnString()
		cs.LAN = nil
		pair[0].AddPeer(infoFrom(cs))
	}
}

// TestSimulatedMoveToLAN: two nodes on one LAN first find each other
// only through their router's public address, while the LAN drops
// everything; the session moves to the LAN once a LAN path answers, on
// both sides. The LAN addresses are either told over the direct session
// (gossip) or known from the start (the connection string, and then
// told over the session too, which as the newest knowledge becomes the
// source shown).
func TestSimulatedMoveToLAN(t *testing.T) {
	tests := []struct {
		name string
		// before sets up the first, direct, session; after opens the LAN
		// path.
		before func(a, b *testNode)
	}{
		{name: "LAN address told over the session", before: directFirst},
		{name: "LAN address in the connection string", before: introduce},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			site, a, b := sameLAN(t)
			site.SetLANLink(simnet.Link{Loss: 1})
			tc.before(a, b)
			for _, side := range [][2]*testNode{{a, b}, {b, a}} {
				waitPath(t, side[0], side[1].ID(), PathDirect, 2*simPunchTimeout)
			}
			exchange(t, a, b)
			first := a.peer(b.ID()).session()
			start := time.Now()
			site.SetLANLink(simnet.Link{})
			for _, side := range [][2]*testNode{{a, b}, {b, a}} {
				st := waitPath(t, side[0], side[1].ID(), PathLAN, 3*maxUpgradeProbe/4)
				if st.Addr != side[1].localAddr() {
					t.Fatalf("%s's LAN session is with %s, not %s's host address", side[0].name(), st.Addr, side[1].name())
				}
				if dialer := side[0].ID().Less(side[1].ID()); dialer && st.FoundVia != SourceSession {
					t.Fatalf("%s, the dialer, found %s's LAN address via %q, want %q", side[0].name(), side[1].name(), st.FoundVia, SourceSession)
				}
				if best := st.Paths[0]; best.Kind != PathLAN || best.RTT == 0 {
					t.Fatalf("%s's best path to %s is %s, want a measured LAN path", side[0].name(), side[1].name(), best)
				}
			}
			took := time.Since(start)
			if first.conn.Context().Err() == nil {
				t.Fatal("the direct session is still open after the move")
			}
			exchange(t, a, b)
			t.Logf("%s: moved from %s to %s in %s", tc.name, first, a.peer(b.ID()).session(), took.Round(time.Millisecond))
		})
	}
}
