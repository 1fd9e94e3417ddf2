package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
)

// Lines an agent logs when it plays its part in birthday probing.
const (
	birthdayHardLine = "birthday probing: opening spare sockets"
	birthdayEasyLine = "birthday probing: probing random ports"
)

// movedHardTimeout bounds how long bob takes to reach alice directly
// after she started again behind a symmetric NAT: his session to her old
// address ends (15 s idle), he looks her up 5 s later, and a round of
// birthday probing takes 4 s (a second of plain punching, 3 s of random
// probes); with room for a second attempt on a loaded 2-core box.
const movedHardTimeout = 90 * time.Second

// TestMovedBehindHardNATFoundOnDHT (issue 15): alice and bob are peers
// behind port-restricted NATs; bob holds alice's connection string, which
// says nothing of a hard NAT. Alice's laptop dies and comes back up behind
// a symmetric NAT. Her rendezvous record now says her NAT maps a new port
// per destination; bob finds it on the DHT, takes her for hard (his
// peers list and store say so), and probes random ports of her new
// address while she opens spare sockets toward him: they connect
// directly, which only birthday probing can do between these two NATs.
// Before, bob learned a hard NAT only from a connection string, and the
// two stayed apart. Bob's store keeps what he learned for his next start.
func TestMovedBehindHardNATFoundOnDHT(t *testing.T) {
	t.Parallel()
	d := newDHTLab(t)
	a := d.start(t, lab.PortRestricted, "alice", "")
	b := d.start(t, lab.PortRestricted, "bob", "")
	connectPair(t, a, b)
	aliceID := a.nodeID()
	waitPeer(t, b, aliceID, connectTimeout, "connect", connected)
	before := waitPublished(t, a)
	if before.HardNAT {
		t.Fatalf("alice behind a port-restricted NAT published a hard NAT: %+v", before)
	}
	if p := b.peer(aliceID); p.HardNAT {
		t.Fatalf("bob takes alice behind a port-restricted NAT for hard: %+v", p)
	}

	a.killHard()
	// Alice runs the default punch timeout (a minute), as a user's agent
	// does: the tests' 8 s would close her spares between attempts, and
	// bob's birthday probing, which starts when he finds her record,
	// needs them open.
	cfg := fmt.Sprintf("punch_timeout = %q\nlog_level = \"debug\"\ndht = false\n", "1m")
	if err := os.WriteFile(filepath.Join(a.home, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	site := d.AddSite(lab.Symmetric)
	start := time.Now()
	a = startAgentIn(t, d.Lab, site.AddHost(), "alice", a.home, d.flags()...)
	if !strings.Contains(a.connString(), "nat=hard") {
		t.Fatalf("alice's string behind a symmetric NAT does not say nat=hard: %s", a.connString())
	}
	after := waitRepublished(t, a, before.Seq)
	if !after.HardNAT {
		t.Fatalf("alice's record behind a symmetric NAT does not say so: %+v", after)
	}
	p := waitPeer(t, b, aliceID, movedHardTimeout, "bob to reach alice directly behind her symmetric NAT", func(p control.PeerInfo) bool {
		return connectedFrom(site)(p) && p.Path == "direct"
	})
	took := time.Since(start)
	t.Logf("bob reached alice behind her symmetric NAT %s after she started there: %s via %s (found via %q); his last lookup: %+v",
		took.Round(100*time.Millisecond), p.Addr, p.Path, p.FoundVia, p.DHTLookup)
	if !p.HardNAT {
		t.Errorf("bob's peers list does not say alice's NAT is hard: %+v", p)
	}
	if l := p.DHTLookup; l == nil || l.Result != "found" || !strings.Contains(l.Detail, "new port per destination") {
		t.Errorf("bob's last lookup of alice: %+v; want her flagged record found", l)
	}
	if !strings.Contains(b.log(), birthdayEasyLine) || !strings.Contains(a.log(), birthdayHardLine) {
		t.Errorf("birthday probing did not run: bob probed random ports: %v, alice opened spares: %v",
			strings.Contains(b.log(), birthdayEasyLine), strings.Contains(a.log(), birthdayHardLine))
	}
	if !strings.Contains(a.log(), birthdayLine) {
		t.Errorf("alice's session does not run on a spare socket: her log lacks %q", birthdayLine)
	}
	exchangeMessages(t, a, b, "after alice moved behind a symmetric NAT")

	// Bob's store keeps it: started again, he takes her for hard before
	// he hears from her.
	b.stop()
	b = startAgentIn(t, d.Lab, b.host, "bob", b.home, d.flags()...)
	if p := b.peer(aliceID); !p.HardNAT {
		t.Errorf("bob, started again, does not take alice for hard: %+v", p)
	}
}
