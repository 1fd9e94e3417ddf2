package e2e

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
)

// lanRefindTimeout is the bound: two peers on one LAN find each
// other again within 10 s of an address change.
const lanRefindTimeout = 10 * time.Second

// renumber moves host from address old to address last on the same /24,
// as a new DHCP lease does: the old address goes, the new one comes, the
// default route with it.
func renumber(t testing.TB, host *lab.Host, old netip.Addr, last byte) netip.Addr {
	t.Helper()
	b := old.As4()
	b[3] = last
	now := netip.AddrFrom4(b)
	b[3] = 1
	router := netip.AddrFrom4(b)
	script := fmt.Sprintf("ip addr del %s/24 dev eth0 && ip addr add %s/24 dev eth0 && ip route replace default via %s", old, now, router)
	if out, err := host.Exec("sh", "-c", script); err != nil {
		t.Fatalf("renumber %s: %v: %s", host.Name(), err, out)
	}
	return now
}

// at returns a condition: connected to the peer at addr (any port).
func at(addr netip.Addr) func(control.PeerInfo) bool {
	return func(p control.PeerInfo) bool {
		return connected(p) && strings.HasPrefix(p.Addr, addr.String()+":")
	}
}

// TestLANRefind (issue 13, d): alice and bob share a LAN, with the DHT
// off. Bob's address changes: they are connected again within 10 s. Then
// both change at once, so that neither knows where the other is: only
// their announcements on the LAN can bring them together, within 10 s
// again.
func TestLANRefind(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	site := l.AddSite(lab.PortRestricted)
	ha, hb := site.AddHost(), site.AddHost()
	a, b := startAgent(t, l, ha, "alice"), startAgent(t, l, hb, "bob")
	aliceID, bobID := a.nodeID(), b.nodeID()
	connectPair(t, a, b)
	waitPeer(t, a, bobID, connectTimeout, "connect", at(hb.IP()))
	waitPeer(t, b, aliceID, connectTimeout, "connect", at(ha.IP()))

	bobAt := renumber(t, hb, hb.IP(), 50)
	start := time.Now()
	pa := waitPeer(t, a, bobID, lanRefindTimeout, "alice to find bob at his new address", at(bobAt))
	pb := waitPeer(t, b, aliceID, lanRefindTimeout-time.Since(start), "bob to find alice from his new address", at(ha.IP()))
	t.Logf("bob renumbered: connected again over the LAN after %s (alice found him via %s, he her via %s)",
		time.Since(start).Round(100*time.Millisecond), pa.FoundVia, pb.FoundVia)
	exchangeMessages(t, a, b, "after bob's new lease")

	aliceAt := renumber(t, ha, ha.IP(), 60)
	bobAt = renumber(t, hb, bobAt, 61)
	start = time.Now()
	pa = waitPeer(t, a, bobID, lanRefindTimeout, "alice to find bob when both renumbered", at(bobAt))
	pb = waitPeer(t, b, aliceID, lanRefindTimeout-time.Since(start), "bob to find alice when both renumbered", at(aliceAt))
	t.Logf("both renumbered: connected again over the LAN after %s (alice found bob via %s, he her via %s)",
		time.Since(start).Round(100*time.Millisecond), pa.FoundVia, pb.FoundVia)
	for _, via := range []string{pa.FoundVia, pb.FoundVia} {
		if via != "lan" && via != "probe" {
			t.Errorf("found via %q: only a LAN announcement, or the probes it led to, knew the new addresses", via)
		}
	}
	exchangeMessages(t, a, b, "after both renumbered")
}
