package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
)

// directPossible says whether hole punching can work between two NAT
// kinds: only two symmetric NATs leave no path (neither side's port for
// the other can be found). An address-restricted NAT lets the symmetric
// side's new port in, as it filters by address only; a port-restricted
// one needs birthday probing (birthdayNeeded).
func directPossible(x, y lab.NATKind) bool {
	return x != lab.Symmetric || y != lab.Symmetric
}

// birthdayNeeded says whether only birthday probing connects the two
// kinds: a symmetric NAT facing a port-restricted one.
func birthdayNeeded(x, y lab.NATKind) bool {
	return x == lab.Symmetric && y == lab.PortRestricted || x == lab.PortRestricted && y == lab.Symmetric
}

// birthdayLine is what an agent logs when birthday probing opened a path
// on one of its spare sockets.
const birthdayLine = "birthday probing: a spare socket was reached"

// pairings lists every unordered pair of NAT kinds.
func pairings() [][2]lab.NATKind {
	var out [][2]lab.NATKind
	for i, x := range lab.Kinds {
		for _, y := range lab.Kinds[i:] {
			out = append(out, [2]lab.NATKind{x, y})
		}
	}
	return out
}

// twoSites builds a lab with one host behind each of two NATs and an agent
// on each.
func twoSites(t testing.TB, kindA, kindB lab.NATKind) (l *lab.Lab, a, b *agentProc) {
	t.Helper()
	l = lab.New(t)
	ha := l.AddSite(kindA).AddHost()
	hb := l.AddSite(kindB).AddHost()
	return l, startAgent(t, l, ha, "alice"), startAgent(t, l, hb, "bob")
}

// matrixCase is one row of the connectivity matrix: two hosts, and
// whether they must connect directly, and by birthday probing.
type matrixCase struct {
	name string
	// sites builds the two sites, each with one host, in l.
	sites    func(l *lab.Lab) (a, b *lab.Site)
	direct   bool
	birthday bool
	args     []string // more arguments of both agents
	// selfProbes: each agent's probes to the other's LAN candidate reach
	// itself (and are dropped as for another node).
	selfProbes bool
	// overIPv6: the session must run to the other host's IPv6 address
	// (both sites dual-stack, and IPv4 alone has no direct path).
	overIPv6 bool
}

// matrixCases are every pairing of NAT kinds, then the homes real
// networks have beyond them: a home behind a carrier-grade NAT facing an
// ordinary one, and two homes behind the same carrier, with and without
// hairpinning there.
func matrixCases() []matrixCase {
	var cases []matrixCase
	for _, pair := range pairings() {
		cases = append(cases, matrixCase{
			name:     fmt.Sprintf("%s-%s", pair[0], pair[1]),
			sites:    func(l *lab.Lab) (a, b *lab.Site) { return l.AddSite(pair[0]), l.AddSite(pair[1]) },
			direct:   directPossible(pair[0], pair[1]),
			birthday: birthdayNeeded(pair[0], pair[1]),
		})
	}
	sameCarrier := func(hairpin bool) func(l *lab.Lab) (a, b *lab.Site) {
		return func(l *lab.Lab) (a, b *lab.Site) {
			c := l.AddCarrier(hairpin)
			return l.AddSiteBehind(c, lab.PortRestricted), l.AddSiteBehind(c, lab.PortRestricted)
		}
	}
	return append(cases,
		matrixCase{
			name: "double-NAT(port-restricted+CGNAT)-port-restricted",
			sites: func(l *lab.Lab) (a, b *lab.Site) {
				return l.AddSiteBehind(l.AddCarrier(false), lab.PortRestricted), l.AddSite(lab.PortRestricted)
			},
			direct: true,
		},
		matrixCase{
			name: "double-NAT(symmetric+CGNAT)-full-cone",
			sites: func(l *lab.Lab) (a, b *lab.Site) {
				return l.AddSiteBehind(l.AddCarrier(false), lab.Symmetric), l.AddSite(lab.FullCone)
			},
			direct: true,
		},
		// Birthday probing through two NATs: the home's random ports stay
		// within its share of the carrier's, which the carrier keeps.
		matrixCase{
			name: "double-NAT(symmetric+CGNAT)-port-restricted",
			sites: func(l *lab.Lab) (a, b *lab.Site) {
				return l.AddSiteBehind(l.AddCarrier(false), lab.Symmetric), l.AddSite(lab.PortRestricted)
			},
			direct:   true,
			birthday: true,
		},
		// Two homes that use the same LAN addresses, as most do, and the
		// same port: each one's probes to the other's LAN candidate reach
		// itself, which must never count as the peer.
		matrixCase{
			name: "same-LAN-addresses(port-restricted, 192.168.1.0/24, same port)",
			sites: func(l *lab.Lab) (a, b *lab.Site) {
				lan := netip.MustParsePrefix("192.168.1.0/24")
				return l.AddSiteWithLAN(lab.PortRestricted, lan), l.AddSiteWithLAN(lab.PortRestricted, lan)
			},
			direct:     true,
			args:       []string{"--port", "41641"},
			selfProbes: true,
		},
		// IPv6: two dual-stack homes whose IPv4 NATs are both symmetric
		// (no direct IPv4 path) but whose IPv6 firewalls open to a
		// simultaneous send: the session runs over IPv6.
		matrixCase{
			name: "IPv6(symmetric)-IPv6(symmetric)",
			sites: func(l *lab.Lab) (a, b *lab.Site) {
				return l.AddDualStackSite(lab.Symmetric), l.AddDualStackSite(lab.Symmetric)
			},
			direct:   true,
			overIPv6: true,
		},
		// A peer without IPv6 still reaches a dual-stack one, over IPv4.
		matrixCase{
			name: "IPv6(port-restricted)-port-restricted(IPv4 only)",
			sites: func(l *lab.Lab) (a, b *lab.Site) {
				return l.AddDualStackSite(lab.PortRestricted), l.AddSite(lab.PortRestricted)
			},
			direct: true,
		},
		matrixCase{name: "same-CGNAT-hairpin", sites: sameCarrier(true), direct: true},
		// Without hairpinning nothing joins the two homes: their LANs
		// are apart, and the carrier drops what they send to its public
		// address. Only a relay connects them.
		matrixCase{name: "same-CGNAT-no-hairpin", sites: sameCarrier(false), direct: false},
	)
}

// matrixResult is what a row of the matrix came to.
type matrixResult struct {
	name, path, how string
	took            time.Duration
}

// TestPairings is the connectivity matrix: two agents behind each row's
// NATs connect directly (and exchange messages) where a direct path
// exists, and both say plainly that the peer cannot be reached where
// none does. A connected peer's address is always the other site's
// public address: never a node's own, nor a LAN address of another
// network. It logs the matrix: the path, the time from the second
// connect until both agents said connected (their own event times), and
// how the path was found: the address in the connection string (plain
// punch), one learned from the peer's probes (peer-reflexive, the
// symmetric side's new port), or birthday probing (a symmetric NAT facing
// a port-restricted one, without port mapping: the symmetric side's
// session runs on one of its spare sockets).
func TestPairings(t *testing.T) {
	var mu sync.Mutex
	results := map[string]matrixResult{}
	cases := matrixCases()
	t.Cleanup(func() {
		var b strings.Builder
		b.WriteString("\n| pairing | path | time to connected | how |\n|---|---|---|---|\n")
		for _, tc := range cases {
			r, ok := results[tc.name]
			if !ok {
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.name, r.path, r.took.Round(time.Millisecond), r.how)
		}
		t.Log(b.String())
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := lab.New(t)
			sa, sb := tc.sites(l)
			a, b := startAgent(t, l, sa.AddHost(), "alice", tc.args...), startAgent(t, l, sb.AddHost(), "bob", tc.args...)
			r := runPairing(t, tc, a, b, sa, sb)
			r.name = tc.name
			mu.Lock()
			results[tc.name] = r
			mu.Unlock()
		})
	}
}

// runPairing connects a and b, which run behind sa and sb, and checks
// what comes of it against tc.
func runPairing(t *testing.T, tc matrixCase, a, b *agentProc, sa, sb *lab.Site) matrixResult {
	ctx, cancel := context.WithTimeout(t.Context(), connectTimeout)
	defer cancel()
	upA, upB := connectedAt(t, ctx, a, b.nodeID()), connectedAt(t, ctx, b, a.nodeID())
	a.mustCLI("connect", b.connString())
	start := time.Now()
	b.mustCLI("connect", a.connString())
	if !tc.direct {
		// No hang, no false hope: both say plainly that there is no
		// direct path, and never that they are connected.
		for _, side := range [][2]*agentProc{{a, b}, {b, a}} {
			p := waitPeer(t, side[0], side[1].nodeID(), connectTimeout, "unreachable state", func(p control.PeerInfo) bool {
				return p.State == control.StateOffline
			})
			if !strings.Contains(p.Error, "cannot reach peer directly") {
				t.Fatalf("%s: offline without the plain reason: %+v", side[0].name, p)
			}
		}
		took := time.Since(start)
		if _, err := a.cli("msg", "--timeout", "1s", "bob", "hello?"); err == nil {
			t.Fatal("a message went through although no path exists")
		}
		cancel()
		for _, up := range []<-chan time.Time{upA, upB} {
			if at := <-up; !at.IsZero() {
				t.Fatalf("an agent said connected at %s although no path exists", at)
			}
		}
		return matrixResult{path: "none (unreachable)", took: took, how: "reported unreachable"}
	}
	ta, tb := <-upA, <-upB
	if ta.IsZero() || tb.IsZero() {
		t.Fatalf("not connected after %s (alice %v, bob %v)", connectTimeout, !ta.IsZero(), !tb.IsZero())
	}
	took := max(ta.Sub(start), tb.Sub(start))
	var how []string
	for _, side := range []struct {
		self, other *agentProc
		otherSite   *lab.Site
	}{{a, b, sb}, {b, a, sa}} {
		p := waitPeer(t, side.self, side.other.nodeID(), connectTimeout, "connect", connected)
		addr, err := netip.ParseAddrPort(p.Addr)
		if p.Path != "direct" || err != nil || p.Name != side.other.name {
			t.Fatalf("%s sees %+v, want a direct path to %s", side.self.name, p, side.other.name)
		}
		if tc.overIPv6 {
			if addr.Addr() != side.other.host.IP6() {
				t.Fatalf("%s's session with %s runs to %s, not over IPv6 to %s", side.self.name, side.other.name, addr, side.other.host.IP6())
			}
		} else if addr.Addr() != side.otherSite.PublicIP() {
			t.Fatalf("%s's session with %s runs to %s, not to %s's public address %s", side.self.name, side.other.name, addr, side.other.name, side.otherSite.PublicIP())
		}
		switch p.FoundVia {
		case "probe":
			how = append(how, side.self.name+": peer-reflexive")
		case "conn_string":
			how = append(how, side.self.name+": plain punch")
		default:
			how = append(how, side.self.name+": "+p.FoundVia)
		}
	}
	birthday := false
	for _, side := range []*agentProc{a, b} {
		if strings.Contains(side.log(), birthdayLine) {
			birthday = true
			how = append(how, side.name+": birthday (session on a spare socket)")
		}
	}
	// Elsewhere the symmetric side opens its spares too when plain
	// punching takes over a second (a loaded machine), and a peer that
	// lets anyone in answers them: that is no failure.
	if tc.birthday && !birthday {
		t.Fatal("connected, but not by birthday probing: no spare socket was reached")
	}
	if tc.selfProbes {
		for _, side := range []*agentProc{a, b} {
			if !strings.Contains(side.log(), "probe for another node") {
				t.Fatalf("%s's own probes to the peer's LAN address never came back to it: the test does not test that", side.name)
			}
		}
	}
	exchangeMessages(t, a, b, "pairing")
	t.Logf("%s: direct in %s (%s)", tc.name, took.Round(time.Millisecond), strings.Join(how, ", "))
	path := "direct"
	if tc.overIPv6 {
		path = "direct (IPv6)"
	}
	return matrixResult{path: path, took: took, how: strings.Join(how, ", ")}
}

func TestNATReportPerKind(t *testing.T) {
	tests := []struct {
		kind               lab.NATKind
		mapping, filtering string
	}{
		{lab.None, "endpoint-independent", "endpoint-independent"},
		{lab.FullCone, "endpoint-independent", "endpoint-independent"},
		{lab.AddressRestricted, "endpoint-independent", "address-dependent"},
		{lab.PortRestricted, "endpoint-independent", "address-and-port-dependent"},
		{lab.Symmetric, "address-and-port-dependent", "address-and-port-dependent"},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			t.Parallel()
			l := lab.New(t)
			site := l.AddSite(tc.kind)
			host := site.AddHost()
			out, err := host.Command(t.Context(), punchdropBin, "--home", t.TempDir(), "nat", "--json", "--stun", l.STUN(), "--dht-bootstrap", "none").Output()
			if err != nil {
				t.Fatalf("punchdrop nat: %v", err)
			}
			var info control.NATInfo
			if err := json.Unmarshal(out, &info); err != nil {
				t.Fatalf("punchdrop nat --json: %v in %s", err, out)
			}
			wantIP := site.PublicIP().String()
			if !strings.HasPrefix(info.PublicAddr, wantIP+":") || info.Mapping != tc.mapping || info.Filtering != tc.filtering || info.Summary == "" {
				t.Fatalf("nat = %+v, want public %s:*, mapping %s, filtering %s", info, wantIP, tc.mapping, tc.filtering)
			}
		})
	}
}

func TestSameNATConnectsOverLAN(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	site := l.AddSite(lab.PortRestricted)
	a := startAgent(t, l, site.AddHost(), "alice")
	b := startAgent(t, l, site.AddHost(), "bob")
	connectPair(t, a, b)
	for _, side := range [][2]*agentProc{{a, b}, {b, a}} {
		p := waitPeer(t, side[0], side[1].nodeID(), connectTimeout, "connect over LAN", connected)
		if p.Path != "lan" || !strings.HasPrefix(p.Addr, side[1].host.IP().String()+":") {
			t.Fatalf("%s sees %+v, want path lan to %s", side[0].name, p, side[1].host.IP())
		}
	}
	exchangeMessages(t, a, b, "lan")
}

// TestSessionSurvivesConntrackFlush flushes one router's NAT table in the
// middle of a session. A port-restricted router gets the same port back,
// so the session should carry on; a symmetric one picks a new random port,
// so the old session dies and must be re-punched. Either way messages flow
// again within 30 s without anyone doing anything.
func TestSessionSurvivesConntrackFlush(t *testing.T) {
	for _, tc := range []struct{ flushed, other lab.NATKind }{
		{lab.PortRestricted, lab.PortRestricted},
		{lab.Symmetric, lab.FullCone},
	} {
		t.Run(fmt.Sprintf("flush-%s-facing-%s", tc.flushed, tc.other), func(t *testing.T) {
			t.Parallel()
			l := lab.New(t)
			siteA, siteB := l.AddSite(tc.flushed), l.AddSite(tc.other)
			a := startAgent(t, l, siteA.AddHost(), "alice")
			b := startAgent(t, l, siteB.AddHost(), "bob")
			connectPair(t, a, b)
			waitPeer(t, a, b.nodeID(), connectTimeout, "connect", connected)
			exchangeMessages(t, a, b, "before flush")
			if err := siteA.FlushConntrack(); err != nil {
				t.Fatal(err)
			}
			const recovery = 30 * time.Second
			deadline := time.Now().Add(recovery)
			for _, side := range [][2]*agentProc{{a, b}, {b, a}} {
				out, err := side[0].cli("msg", "--timeout", time.Until(deadline).Round(time.Second).String(), side[1].name, "after flush")
				if err != nil {
					t.Fatalf("%s could not message %s within %s of the flush: %v (%s)", side[0].name, side[1].name, recovery, err, out)
				}
			}
			for _, side := range [][2]*agentProc{{a, b}, {b, a}} {
				waitPeer(t, side[0], side[1].nodeID(), time.Until(deadline)+time.Second, "connected after flush", connected)
			}
			t.Logf("recovered %s after the flush", recovery-time.Until(deadline))
		})
	}
}

// TestPeerMovesToAnotherNetwork restarts bob, with his key and state, on a
// host behind another NAT: a new public address. Alice only knows the old
// one, but bob's probes reach her and she answers where they came from.
// Bob either stops cleanly (his session ends at once) or dies without a
// word, as a laptop closed at home and opened at work: then alice still
// holds a session to the old address, and bob's probes from the new one
// must replace it.
func TestPeerMovesToAnotherNetwork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		stop func(*agentProc)
	}{
		{"stopped", (*agentProc).stop},
		{"killed", (*agentProc).killHard},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, a, b := twoSites(t, lab.FullCone, lab.PortRestricted)
			connectPair(t, a, b)
			waitPeer(t, a, b.nodeID(), connectTimeout, "connect", connected)
			old := a.peer(b.nodeID()).Addr
			tc.stop(b)
			newSite := l.AddSite(lab.PortRestricted)
			moved := startAgentIn(t, l, newSite.AddHost(), "bob", b.home)
			newNet := newSite.PublicIP().String() + ":"
			waitPeer(t, a, moved.nodeID(), connectTimeout, fmt.Sprintf("reconnect after the move (was %s, want %s…)", old, newNet), func(p control.PeerInfo) bool {
				return connected(p) && strings.HasPrefix(p.Addr, newNet)
			})
			exchangeMessages(t, a, moved, "after the move")
		})
	}
}

func TestImpostorIsRefused(t *testing.T) {
	t.Parallel()
	l, a, b := twoSites(t, lab.FullCone, lab.FullCone)
	connectPair(t, a, b)
	waitPeer(t, a, b.nodeID(), connectTimeout, "connect", connected)
	bob, err := b.id()
	if err != nil {
		t.Fatal(err)
	}
	b.stop()
	// Same host, same address and port, another key, same name.
	imp := startAgent(t, l, b.host, "bob", "--port", fmt.Sprint(bob.ListenPort))
	imp.mustCLI("connect", a.connString())
	impID := imp.nodeID()
	waitPeer(t, a, impID, connectTimeout, "impostor shown as a pending request", func(p control.PeerInfo) bool {
		return p.State == control.StatePending
	})
	// Bob's old session dies and is not re-made with the impostor.
	bobID := bob.NodeID
	waitPeer(t, a, bobID, connectTimeout, "bob no longer connected", func(p control.PeerInfo) bool {
		return p.State != control.StateConnected
	})
	time.Sleep(3 * time.Second)
	if p := a.peer(bobID); p.State == control.StateConnected {
		t.Fatalf("alice connected to the impostor as bob: %+v", p)
	}
	if p := imp.peer(a.nodeID()); p.State == control.StateConnected {
		t.Fatalf("impostor connected to alice: %+v", p)
	}
	if _, err := imp.cli("msg", "--timeout", "2s", "alice", "trust me"); err == nil {
		t.Fatal("impostor's message was accepted")
	}
	if hasMessage(a.messages(), "trust me") {
		t.Fatal("alice stored the impostor's message")
	}
}

func TestCLIErrors(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	a := startAgent(t, l, l.AddSite(lab.None).AddHost(), "alice")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"connect", "punchdrop:NOTANID@1.2.3.4:5"}, "not a node ID"},
		{[]string{"connect", "hello"}, "does not start with"},
		{[]string{"connect", a.connString()}, "own connection string"},
		{[]string{"msg", "nobody", "hi"}, "no peer matches"},
		{[]string{"accept", "nobody"}, "no peer matches"},
		{[]string{"connect"}, "needs"},
	}
	for _, tc := range tests {
		out, err := a.cli(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("punchdrop %v = %q, %v; want an error containing %q", tc.args, out, err, tc.want)
		}
	}
	// Without an agent every command says so plainly.
	out, err := (&agentProc{t: t, home: t.TempDir()}).cli("peers")
	if err == nil || !strings.Contains(err.Error(), "agent is not running") {
		t.Errorf("peers without agent = %q, %v", out, err)
	}
}
