package e2e

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/dht"
	"github.com/punchdrop/punchdrop/lab"
	"github.com/punchdrop/punchdrop/rendezvous"
	"github.com/punchdrop/punchdrop/session"
)

// Timeouts of the rendezvous tests.
const (
	// refindTimeout is the bound: peers that both moved while
	// apart connect again within a minute of starting.
	refindTimeout = 60 * time.Second
	// publishTimeout covers an agent's start, NAT discovery and first
	// put in the lab's DHT (milliseconds, once started).
	publishTimeout = 20 * time.Second
	// lookupWait covers the wait before a peer is looked up (5 s) and a
	// lookup in a DHT that does not answer (the library tries each
	// bootstrap node a few times, 2 s apart).
	lookupWait = 40 * time.Second
)

// dhtLab is a lab with a private DHT of three "punchdrop dht-node"s.
type dhtLab struct {
	*lab.Lab
	nodes []*lab.DHTNode
}

func newDHTLab(t testing.TB) *dhtLab {
	t.Helper()
	l := lab.New(t)
	return &dhtLab{Lab: l, nodes: l.AddDHTNodes(punchdropBin, 3)}
}

// flags are the agent flags that join the lab's DHT.
func (d *dhtLab) flags() []string { return dhtFlags(d.nodes) }

// dhtFlags returns --dht-bootstrap for each node.
func dhtFlags(nodes []*lab.DHTNode) []string {
	var args []string
	for _, n := range nodes {
		args = append(args, "--dht-bootstrap", n.Addr.String())
	}
	return args
}

// start runs an agent named name on a new host behind a new site of
// kind, in the lab's DHT; home is its home, or "" for a new one.
func (d *dhtLab) start(t testing.TB, kind lab.NATKind, name, home string) *agentProc {
	t.Helper()
	if home == "" {
		home = t.TempDir()
		writeConfig(t, home, "")
	}
	return startAgentIn(t, d.Lab, d.AddSite(kind).AddHost(), name, home, d.flags()...)
}

// natInfo asks a running agent for its NAT and DHT report.
func (a *agentProc) natInfo() control.NATInfo {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := a.client().NAT(ctx)
	if err != nil {
		a.t.Fatalf("nat of %s: %v", a.name, err)
	}
	return info
}

// waitPublished waits until a put its record on the DHT, and returns
// that put.
func waitPublished(t testing.TB, a *agentProc) control.PublishInfo {
	t.Helper()
	deadline := time.Now().Add(publishTimeout)
	for {
		d := a.natInfo().DHT
		if d != nil && d.Publish != nil && d.Publish.Error == "" && d.Publish.Stored > 0 {
			return *d.Publish
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has not published after %s: %+v", a.name, publishTimeout, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitRepublished waits until a published a record above seq.
func waitRepublished(t testing.TB, a *agentProc, seq int64) control.PublishInfo {
	t.Helper()
	deadline := time.Now().Add(publishTimeout)
	for {
		if p := waitPublished(t, a); p.Seq > seq {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s published nothing above seq %d in %s", a.name, seq, publishTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// connectedFrom returns a condition: connected to the peer at an address
// of site.
func connectedFrom(site *lab.Site) func(control.PeerInfo) bool {
	prefix := site.PublicIP().String() + ":"
	return func(p control.PeerInfo) bool { return connected(p) && strings.HasPrefix(p.Addr, prefix) }
}

// TestRendezvousBothMoved (issue 13, a): alice and bob are peers; bob
// stops, alice queues a file for him and stops too; both come back up
// behind other NATs, whose addresses neither knows, and which drop what
// they did not ask for. Each finds the other's record on the DHT: they
// connect within a minute, and the file is delivered.
func TestRendezvousBothMoved(t *testing.T) {
	t.Parallel()
	d := newDHTLab(t)
	a := d.start(t, lab.PortRestricted, "alice", "")
	b := d.start(t, lab.PortRestricted, "bob", "")
	connectPair(t, a, b)
	waitPeer(t, a, b.nodeID(), connectTimeout, "connect", connected)
	waitPublished(t, a)
	waitPublished(t, b)
	b.stop()
	src := randomFile(t, filepath.Join(t.TempDir(), "while-apart.bin"), 256<<10, 13)
	a.mustCLI("send", "bob", src)
	a.stop()

	siteA, siteB := d.AddSite(lab.PortRestricted), d.AddSite(lab.PortRestricted)
	start := time.Now()
	a = startAgentIn(t, d.Lab, siteA.AddHost(), "alice", a.home, d.flags()...)
	b = startAgentIn(t, d.Lab, siteB.AddHost(), "bob", b.home, d.flags()...)
	pa := waitPeer(t, a, b.nodeID(), refindTimeout-time.Since(start), "alice to find bob after both moved", connectedFrom(siteB))
	pb := waitPeer(t, b, a.nodeID(), refindTimeout-time.Since(start), "bob to find alice after both moved", connectedFrom(siteA))
	t.Logf("connected again %s after both started; alice found bob via %s, bob found alice via %s", time.Since(start).Round(100*time.Millisecond), pa.FoundVia, pb.FoundVia)
	if pa.FoundVia != "dht" && pb.FoundVia != "dht" {
		t.Errorf("neither side found the other's new address on the DHT: %q, %q", pa.FoundVia, pb.FoundVia)
	}
	waitTransfer(t, a, "while-apart.bin", "the file queued while apart", isDone)
	sameFile(t, src, filepath.Join(b.downloads(), "while-apart.bin"))
}

// TestRendezvousOneMoves (issue 13, b): bob's laptop dies at home and
// comes back up elsewhere, while alice runs on, behind a NAT that drops
// bob's probes from his new address. Her session to his old one dies;
// she finds his new address on the DHT.
func TestRendezvousOneMoves(t *testing.T) {
	t.Parallel()
	d := newDHTLab(t)
	a := d.start(t, lab.PortRestricted, "alice", "")
	b := d.start(t, lab.PortRestricted, "bob", "")
	connectPair(t, a, b)
	waitPeer(t, a, b.nodeID(), connectTimeout, "connect", connected)
	b.killHard()
	site := d.AddSite(lab.PortRestricted)
	start := time.Now()
	b = startAgentIn(t, d.Lab, site.AddHost(), "bob", b.home, d.flags()...)
	p := waitPeer(t, a, b.nodeID(), refindTimeout, "alice to find bob where he went", connectedFrom(site))
	t.Logf("alice connected to bob again %s after he started elsewhere, via %s", time.Since(start).Round(100*time.Millisecond), p.FoundVia)
	if p.FoundVia != "dht" {
		t.Errorf("alice found bob's new address via %q, want dht", p.FoundVia)
	}
	if l := p.DHTLookup; l == nil || l.Result != "found" {
		t.Errorf("alice's last lookup of bob: %+v", l)
	}
	exchangeMessages(t, a, b, "after bob moved")
}

// TestRendezvousDHTUnreachable (issue 13, c): alice's DHT bootstrap node
// does not exist. While bob is away, her peers list says why the DHT did
// not help, "punchdrop nat" that the DHT is unreachable; when bob comes
// back where he was, the old paths bring him back.
func TestRendezvousDHTUnreachable(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	nowhere := netip.AddrPortFrom(netip.MustParseAddr("198.18.0.250"), lab.DHTPort) // on the lab's internet, nobody there
	a := startAgent(t, l, l.AddSite(lab.PortRestricted).AddHost(), "alice", "--dht-bootstrap", nowhere.String())
	bobHost := l.AddSite(lab.PortRestricted).AddHost()
	b := startAgent(t, l, bobHost, "bob")
	connectPair(t, a, b)
	bobID := b.nodeID()
	waitPeer(t, a, bobID, connectTimeout, "connect", connected)
	b.stop()
	p := waitPeer(t, a, bobID, lookupWait, "alice's lookup of bob", func(p control.PeerInfo) bool { return p.DHTLookup != nil })
	if p.DHTLookup.Result != "unreachable" || !strings.Contains(p.DHTLookup.Detail, "DHT unreachable") {
		t.Errorf("alice's lookup with no DHT: %+v", p.DHTLookup)
	}
	out := a.mustCLI("peers")
	if !strings.Contains(out, "DHT unreachable") {
		t.Errorf("punchdrop peers does not say the DHT is unreachable:\n%s", out)
	}
	if d := a.natInfo().DHT; d == nil || !d.Enabled || d.Reachable == nil || *d.Reachable || !strings.Contains(d.Summary, "unreachable") {
		t.Errorf("punchdrop nat: %+v", d)
	}
	startAgentIn(t, l, bobHost, "bob", b.home)
	waitPeer(t, a, bobID, connectTimeout, "bob back where he was, over the old paths", connected)
}

// TestRendezvousPrivacy (issue 13, e): two agents publish and look each
// other up on the lab's DHT; the DHT nodes' logs of what they stored hold
// neither node ID, nor any address or port of either agent.
func TestRendezvousPrivacy(t *testing.T) {
	t.Parallel()
	d := newDHTLab(t)
	siteA, siteB := d.AddSite(lab.PortRestricted), d.AddSite(lab.PortRestricted)
	a := startAgentIn(t, d.Lab, siteA.AddHost(), "alice", newHome(t), d.flags()...)
	b := startAgentIn(t, d.Lab, siteB.AddHost(), "bob", newHome(t), d.flags()...)
	connectPair(t, a, b)
	waitPeer(t, a, b.nodeID(), connectTimeout, "connect", connected)
	waitPublished(t, a)
	waitPublished(t, b)
	// Neither node ID, in either case, nor any address or port.
	secrets := []string{siteA.PublicIP().String(), siteB.PublicIP().String()}
	for _, x := range []*agentProc{a, b} {
		info := must(x.id())
		secrets = append(secrets, info.NodeID, strings.ToLower(info.NodeID), info.PublicAddr, x.host.IP().String(), fmt.Sprintf(":%d", info.ListenPort))
	}
	bobID := b.nodeID()
	b.stop() // alice looks bob up
	waitPeer(t, a, bobID, lookupWait, "alice's lookup of bob", func(p control.PeerInfo) bool { return p.DHTLookup != nil })
	stored := 0
	for _, n := range d.nodes {
		log := n.Log()
		stored += strings.Count(log, "dht stored item")
		for _, s := range secrets {
			if s != "" && strings.Contains(log, s) {
				t.Errorf("the log of the DHT node at %s holds %q:\n%s", n.Addr, s, log)
			}
		}
	}
	if stored < 2 {
		t.Errorf("the DHT nodes logged %d stored items, want both agents' records", stored)
	}
}

// newHome is a fresh agent home with the test config.
func newHome(t testing.TB) string {
	t.Helper()
	home := t.TempDir()
	writeConfig(t, home, "")
	return home
}

// TestRendezvousReplayRefused (issue 13, f): bob holds alice's record of
// the day after she moved. A DHT that serves only her older record (a
// replay: here, a second DHT where the test put it) does not take him
// back, even after he restarted: the lookup says not_newer.
func TestRendezvousReplayRefused(t *testing.T) {
	t.Parallel()
	d := newDHTLab(t)
	a := d.start(t, lab.PortRestricted, "alice", "")
	b := d.start(t, lab.PortRestricted, "bob", "")
	connectPair(t, a, b)
	waitPeer(t, a, b.nodeID(), connectTimeout, "connect", connected)
	old := waitPublished(t, a)
	// What alice's record looks like on the DHT now, as a DHT node could
	// keep it to replay.
	probe := d.AddSite(lab.None).AddHost()
	aliceID := must(session.ParseNodeID(a.nodeID()))
	oldItem := getRecord(t, probe, d.nodes, aliceID, old.Seq)

	a.stop()
	siteA := d.AddSite(lab.PortRestricted)
	a = startAgentIn(t, d.Lab, siteA.AddHost(), "alice", a.home, d.flags()...)
	newer := waitRepublished(t, a, old.Seq)
	p := waitPeer(t, b, a.nodeID(), refindTimeout, "bob to find alice where she moved", connectedFrom(siteA))
	if l := p.DHTLookup; l == nil || l.Result != "found" || l.Seq != newer.Seq {
		t.Fatalf("bob found alice with %+v, want her record of seq %d", l, newer.Seq)
	}

	a.stop()
	b.stop()
	replayers := d.AddDHTNodes(punchdropBin, 3) // a DHT of their own
	putItem(t, probe, replayers, oldItem)
	b = startAgentIn(t, d.Lab, b.host, "bob", b.home, dhtFlags(replayers)...)
	p = waitPeer(t, b, aliceID.String(), lookupWait, "bob's lookup of alice in the replaying DHT", func(p control.PeerInfo) bool { return p.DHTLookup != nil })
	if p.DHTLookup.Result != "not_newer" {
		t.Fatalf("bob, holding seq %d, took the replay of seq %d: %+v", newer.Seq, old.Seq, p.DHTLookup)
	}
	t.Logf("replay of seq %d refused while holding %d: %s", old.Seq, newer.Seq, p.DHTLookup.Detail)
}

// testDHTNode runs a read-only DHT node in host that joins nodes.
func testDHTNode(t testing.TB, host *lab.Host, nodes []*lab.DHTNode) *dht.Node {
	t.Helper()
	conn, err := lab.ListenUDPIn(host.Name(), netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	var bootstrap []string
	for _, n := range nodes {
		bootstrap = append(bootstrap, n.Addr.String())
	}
	n, err := dht.New(dht.Config{Conn: conn, Bootstrap: bootstrap, ReadOnly: true, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	<-n.Bootstrapped()
	return n
}

// getRecord gets id's item of today from the DHT of nodes, as it stands
// at seq.
func getRecord(t testing.TB, host *lab.Host, nodes []*lab.DHTNode, id session.NodeID, seq int64) rendezvous.Item {
	t.Helper()
	n := testDHTNode(t, host, nodes)
	key, err := rendezvous.BlindPublicKey(ed25519.PublicKey(id[:]), rendezvous.PeriodOf(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	it, stats, err := n.Get(ctx, rendezvous.MutableTarget(key, nil), nil)
	if err != nil || it.Seq != seq {
		t.Fatalf("get alice's record: seq %d, %v (%+v); want seq %d", it.Seq, err, stats, seq)
	}
	return it
}

// putItem puts it on the DHT of nodes.
func putItem(t testing.TB, host *lab.Host, nodes []*lab.DHTNode, it rendezvous.Item) {
	t.Helper()
	n := testDHTNode(t, host, nodes)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if stats, err := n.Put(ctx, it); err != nil {
		t.Fatalf("put the old record: %v (%+v)", err, stats)
	}
}

// quietLog drops a test DHT node's logs.
func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestNATReportsDHT: "punchdrop nat" without an agent joins the DHT with
// a short-lived node and says how many DHT nodes answered; with the DHT
// off it says so.
func TestNATReportsDHT(t *testing.T) {
	t.Parallel()
	d := newDHTLab(t)
	host := d.AddSite(lab.PortRestricted).AddHost()
	nat := func(args ...string) control.NATInfo {
		t.Helper()
		args = append([]string{"--home", t.TempDir(), "nat", "--json", "--stun", d.STUN()}, args...)
		out, err := host.Command(t.Context(), punchdropBin, args...).Output()
		if err != nil {
			t.Fatalf("punchdrop nat: %v", err)
		}
		var info control.NATInfo
		if err := json.Unmarshal(out, &info); err != nil {
			t.Fatalf("punchdrop nat --json: %v in %s", err, out)
		}
		return info
	}
	on := nat(d.flags()...).DHT
	if on == nil || !on.Enabled || on.Reachable == nil || !*on.Reachable || on.Answered < 1 || on.LastOp != "bootstrap" {
		t.Fatalf("DHT through the lab's nodes: %+v", on)
	}
	t.Logf("punchdrop nat: %s", on.Summary)
	if off := nat("--dht-bootstrap", "none").DHT; off == nil || off.Enabled || !strings.Contains(off.Summary, "off") {
		t.Fatalf("DHT off: %+v", off)
	}
}
