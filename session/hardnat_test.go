package session

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/nat"
	"github.com/punchdrop/punchdrop/simnet"
	"github.com/punchdrop/punchdrop/testutil"
)

// TestSimulatedPeerTellsItIsHard: bob holds alice's connection string from
// when her NAT kept its port (no nat=hard); she is behind a symmetric NAT
// now, and bob's router filters by port, so plain punching cannot connect
// them and bob does not know to probe random ports. They meet over her
// relay, and she tells him over that session that her NAT is hard. Once
// the relay is gone they connect directly by birthday probing, her side
// of the session on a spare socket. (Without the news bob would play no
// part in it, and they would stay apart: TestSimulatedPairings's
// symmetric–port-restricted pairing needs both sides.)
func TestSimulatedPeerTellsItIsHard(t *testing.T) {
	w := newSimWorld(t)
	w.punchTimeout = birthdayPunchTimeout
	a := w.node(t, w.net.AddSite(simnet.Symmetric.NAT()), "alice")
	b := w.node(t, w.net.AddSite(simnet.PortRestricted.NAT()), "bob")
	setRelay(t, a, w.relay(t))
	stale := a.ConnString()
	if !stale.HardNAT || a.OwnNAT() != NATHard {
		t.Fatalf("alice behind a symmetric NAT: string %s, own NAT %q", stale, a.OwnNAT())
	}
	stale.HardNAT = false
	b.AddPeer(infoFrom(stale))
	a.AddPeer(infoFrom(b.ConnString()))
	waitPath(t, b, a.ID(), PathRelay, relayConnectWithin)
	testutil.WaitFor(t, 5*time.Second, "bob to hear that alice's NAT is hard", func() bool { return b.peer(a.ID()).isHard() })
	relayed := b.peer(a.ID()).session()
	start := time.Now()
	if err := a.SetRelay(relayName, nil); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, time.Second, "the relayed session to end", func() bool { return relayed.conn.Context().Err() != nil })
	for _, side := range [][2]*testNode{{a, b}, {b, a}} {
		waitPath(t, side[0], side[1].ID(), PathDirect, 2*birthdayPunchTimeout)
	}
	took := time.Since(start)
	if local := a.peer(b.ID()).session().Path.Local; !local.isSpare() {
		t.Fatalf("alice's direct session runs out of %q, not a spare: birthday probing did not make it", local)
	}
	exchange(t, a, b)
	t.Logf("direct by birthday probing %s after the relay went: %s", took.Round(time.Millisecond), b.peer(a.ID()).session())
}

// TestOwnNATChangeIsTold: a node whose NAT turns out to map a new port
// per destination (a later NAT discovery says so) tells its connected
// peers at once, and its owner (LocalCandidates, with the same
// candidates), and again when it no longer does; its connection string
// says the same.
func TestOwnNATChangeIsTold(t *testing.T) {
	w := newSimWorld(t)
	var mu sync.Mutex
	var told [][]Candidate // alice's LocalCandidates events
	cfg := w.config(t, w.net.AddSite(simnet.PortRestricted.NAT()), "alice")
	cfg.Events.LocalCandidates = func(cands []Candidate) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, cands)
	}
	a := &testNode{Node: startNode(t, cfg)}
	waitNAT(t, a.Node)
	b := w.node(t, w.net.AddSite(simnet.FullCone.NAT()), "bob")
	introduce(a, b)
	for _, side := range [][2]*testNode{{a, b}, {b, a}} {
		waitPath(t, side[0], side[1].ID(), PathDirect, 2*simPunchTimeout)
	}
	if a.OwnNAT() != NATEasy || b.peer(a.ID()).isHard() {
		t.Fatalf("alice says her NAT is %q, bob takes it for hard: %v", a.OwnNAT(), b.peer(a.ID()).isHard())
	}
	events := func() [][]Candidate {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(told)
	}
	for _, step := range []struct {
		mapping nat.Behavior
		hard    bool
	}{{nat.AddressAndPortDependent, true}, {nat.EndpointIndependent, false}, {nat.AddressDependent, true}} {
		before := events()
		// What a NAT discovery that found this mapping leaves (refreshNAT;
		// the next one runs in natRefreshInterval, after the test).
		a.mu.Lock()
		a.report.Mapping = step.mapping
		a.mu.Unlock()
		a.announceCandidates()
		testutil.WaitFor(t, 5*time.Second, "bob to hear alice's NAT is "+string(step.mapping), func() bool { return b.peer(a.ID()).isHard() == step.hard })
		after := events()
		if len(after) != len(before)+1 || !slices.Equal(after[len(after)-1], a.LocalCandidates()) {
			t.Fatalf("alice's owner heard %d events (%d before), the last %v; want one more, with %v", len(after), len(before), after[len(after)-1], a.LocalCandidates())
		}
		if a.ConnString().HardNAT != step.hard {
			t.Fatalf("alice's string %s after a %s mapping", a.ConnString(), step.mapping)
		}
	}
	// The same discovery again is no news.
	n := len(events())
	a.announceCandidates()
	if len(events()) != n {
		t.Fatal("alice's owner heard of her candidates again with nothing changed")
	}
}

// TestSimulatedBirthdayStartsAfterDiscovery: a node behind a symmetric NAT
// that starts punching a peer before its NAT discovery is done (an agent
// punches the peers in its store as it starts) plays its part in birthday
// probing as soon as discovery says its NAT is hard, within that punch,
// not a punch timeout (a minute) later. Alice's uplink is slow, so her
// discovery takes seconds; bob knows she is hard from the start.
func TestSimulatedBirthdayStartsAfterDiscovery(t *testing.T) {
	w := newSimWorld(t)
	w.punchTimeout = birthdayPunchTimeout
	siteA := w.net.AddSite(simnet.Symmetric.NAT())
	siteA.SetLink(simnet.Link{Delay: 300 * time.Millisecond})
	b := w.node(t, w.net.AddSite(simnet.PortRestricted.NAT()), "bob")
	cfgA := w.config(t, siteA, "alice")
	cfgA.PunchTimeout = DefaultPunchTimeout
	a := recordingNode(t, cfgA)
	start := time.Now()
	a.AddPeer(infoFrom(b.ConnString()))
	testutil.WaitFor(t, 5*time.Second, "alice to punch bob", func() bool { return stateOf(a, b.ID()).State == StateConnecting })
	if a.NAT().PublicAddr.IsValid() {
		t.Fatal("alice's NAT discovery was over before her punch started; the test needs it later")
	}
	// What bob knows of alice: her router's address (birthday probing
	// needs only the IP) and that her NAT is hard.
	b.AddPeer(PeerInfo{ID: a.ID(), Name: "alice", Candidates: []netip.AddrPort{netip.AddrPortFrom(siteA.PublicIP(), 4000)}, HardNAT: true})
	waitNAT(t, a.Node)
	discovered := time.Since(start)
	for _, side := range [][2]*testNode{{a, b}, {b, a}} {
		waitPath(t, side[0], side[1].ID(), PathDirect, DefaultPunchTimeout/2)
	}
	if local := a.peer(b.ID()).session().Path.Local; !local.isSpare() {
		t.Fatalf("alice's session runs out of %q, not a spare", local)
	}
	t.Logf("alice knew her NAT after %s, connected by birthday probing after %s", discovered.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}
