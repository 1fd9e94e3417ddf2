package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
)

var natKinds = []lab.NATKind{lab.None, lab.FullCone, lab.PortRestricted, lab.Symmetric}

// directPossible says whether hole punching can work between two NAT
// kinds: only a symmetric NAT facing a port-restricted or another symmetric
// one has no path (its port for the peer cannot be predicted, and the
// other side filters everything else).
func directPossible(x, y lab.NATKind) bool {
	hard := func(k lab.NATKind) bool { return k == lab.Symmetric }
	strict := func(k lab.NATKind) bool { return k == lab.Symmetric || k == lab.PortRestricted }
	return !(hard(x) && strict(y) || hard(y) && strict(x))
}

// pairings lists every unordered pair of NAT kinds.
func pairings() [][2]lab.NATKind {
	var out [][2]lab.NATKind
	for i, x := range natKinds {
		for _, y := range natKinds[i:] {
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

func TestPairings(t *testing.T) {
	for _, pair := range pairings() {
		t.Run(fmt.Sprintf("%s-%s", pair[0], pair[1]), func(t *testing.T) {
			t.Parallel()
			_, a, b := twoSites(t, pair[0], pair[1])
			connectPair(t, a, b)
			if !directPossible(pair[0], pair[1]) {
				// No hang, no false hope: both say plainly that there is
				// no direct path.
				for _, side := range [][2]*agentProc{{a, b}, {b, a}} {
					p := waitPeer(t, side[0], side[1].nodeID(), connectTimeout, "unreachable state", func(p control.PeerInfo) bool {
						return p.State == control.StateOffline
					})
					if !strings.Contains(p.Error, "cannot reach peer directly") {
						t.Fatalf("%s: offline without the plain reason: %+v", side[0].name, p)
					}
				}
				if _, err := a.cli("msg", "--timeout", "1s", "bob", "hello?"); err == nil {
					t.Fatal("a message went through although no path exists")
				}
				return
			}
			for _, side := range [][2]*agentProc{{a, b}, {b, a}} {
				p := waitPeer(t, side[0], side[1].nodeID(), connectTimeout, "connect", connected)
				if p.Path != "direct" || p.Addr == "" || p.Name != side[1].name {
					t.Fatalf("%s sees %+v, want a direct path to %s", side[0].name, p, side[1].name)
				}
			}
			exchangeMessages(t, a, b, "pairing")
		})
	}
}

func TestNATReportPerKind(t *testing.T) {
	tests := []struct {
		kind               lab.NATKind
		mapping, filtering string
	}{
		{lab.None, "endpoint-independent", "endpoint-independent"},
		{lab.FullCone, "endpoint-independent", "endpoint-independent"},
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
