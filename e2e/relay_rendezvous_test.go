package e2e

import (
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
)

// TestRelayFoundOnDHT (issues 13 and 14): alice and bob sit behind
// symmetric NATs, so they meet only through bob's relay (alice has
// none). Bob's laptop dies and comes back up behind another symmetric
// NAT, with a new relayed address (the relay still holds his old
// allocation). Nothing alice knows leads to him any more: his new public
// address cannot be punched, and his new relayed address sends from a
// port her NAT never sent to, so it drops his probes. Only his
// rendezvous record tells her his new relayed address: she connects to
// it, through the relay, and says she found it on the DHT.
func TestRelayFoundOnDHT(t *testing.T) {
	t.Parallel()
	d := newDHTLab(t)
	turn := startTURN(t, d.Lab, false)
	withRelay := agentSpec{
		args:  append([]string{"--relay", turn.URL("udp")}, d.flags()...),
		ready: func(info control.IDInfo) bool { return len(info.RelayAddrs) > 0 && info.PublicAddr != "" },
	}
	a := d.start(t, lab.Symmetric, "alice", "")
	b := startAgentWith(t, d.Lab, d.AddSite(lab.Symmetric).AddHost(), "bob", newHome(t), withRelay)
	oldRelay := must(b.id()).RelayAddrs
	connectPair(t, a, b)
	bobID := b.nodeID()
	waitRelayed(t, a, b, relayConnectWithin)
	waitPublished(t, b)

	b.killHard()
	start := time.Now()
	b = startAgentWith(t, d.Lab, d.AddSite(lab.Symmetric).AddHost(), "bob", b.home, withRelay)
	info := must(b.id())
	if len(info.RelayAddrs) != 1 || len(oldRelay) != 1 || info.RelayAddrs[0] == oldRelay[0] {
		t.Fatalf("bob's relayed address before and after the move: %v, %v; the test needs a new one", oldRelay, info.RelayAddrs)
	}
	newRelay := info.RelayAddrs[0]
	p := waitPeer(t, a, bobID, refindTimeout, "alice to reach bob at his new relayed address", func(p control.PeerInfo) bool {
		return relayed(p) && p.Addr == newRelay
	})
	t.Logf("alice reached bob through his new relayed address %s %s after he started elsewhere, via %s",
		newRelay, time.Since(start).Round(100*time.Millisecond), p.FoundVia)
	if p.FoundVia != "dht" {
		t.Errorf("alice found bob's new relayed address via %q, want dht", p.FoundVia)
	}
	exchangeMessages(t, a, b, "after bob moved behind his relay")
}
