package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/lab"
)

// BenchmarkIPv6 compares IPv6 with IPv4 in the lab: for each pairing, the
// median time (connectTrials fresh agent pairs) from the second connect
// until both agents' events said connected, which family the session
// took, and the goodput of 100 MiB on the last pair. Dual-stack sites
// have stateful IPv6 firewalls; "IPv4 only" sites have no IPv6.
func BenchmarkIPv6(b *testing.B) {
	const size = 100 << 20
	for _, tc := range []struct {
		name     string
		kind     lab.NATKind
		dual     bool
		wantIPv6 bool // the session must run over IPv6
	}{
		{"IPv4-only port-restricted", lab.PortRestricted, false, false},
		{"dual-stack port-restricted", lab.PortRestricted, true, false},
		{"dual-stack symmetric", lab.Symmetric, true, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l := lab.New(b)
			site := l.AddSite
			if tc.dual {
				site = l.AddDualStackSite
			}
			ha, hb := site(tc.kind).AddHost(), site(tc.kind).AddHost()
			var times []time.Duration
			families := map[string]int{}
			var goodput string
			for i := range connectTrials {
				a, c := startAgent(b, l, ha, "alice"), startAgent(b, l, hb, "bob")
				took, addr := connectFamily(b, a, c)
				family := "IPv4"
				if addr.Addr().Is6() {
					family = "IPv6"
				}
				if tc.wantIPv6 && family != "IPv6" {
					b.Fatalf("session over %s to %s, want IPv6", family, addr)
				}
				times = append(times, took)
				families[family]++
				if i == connectTrials-1 {
					src := randomFile(b, filepath.Join(b.TempDir(), "ipv6.bin"), size, 6)
					t := sendWait(b, a, src)
					sameFile(b, src, filepath.Join(c.downloads(), "ipv6.bin"))
					goodput = fmt.Sprintf("%.0f MB/s over %s", mbps(size, t), family)
					b.ReportMetric(mbps(size, t), "MB/s")
				}
				a.stop()
				c.stop()
			}
			slices.Sort(times)
			median := times[len(times)/2]
			b.ReportMetric(float64(median.Microseconds())/1000, "ms-median")
			fmt.Printf("ipv6 %-28s connected median %6.1f ms (runs %v), families %v, 100 MiB: %s\n", tc.name, float64(median.Microseconds())/1000, times, families, goodput)
		})
	}
}

// connectFamily connects a and c (c second) and returns the time from
// c's connect until both agents' events said connected, and the address
// a's session runs to.
func connectFamily(b *testing.B, a, c *agentProc) (time.Duration, netip.AddrPort) {
	ctx, cancel := context.WithTimeout(b.Context(), connectTimeout)
	defer cancel()
	upA, upC := connectedAt(b, ctx, a, c.nodeID()), connectedAt(b, ctx, c, a.nodeID())
	a.mustCLI("connect", c.connString())
	start := time.Now()
	c.mustCLI("connect", a.connString())
	ta, tc := <-upA, <-upC
	if ta.IsZero() || tc.IsZero() {
		b.Fatalf("no connection after %s", connectTimeout)
	}
	p := waitPeer(b, a, c.nodeID(), connectTimeout, "connect", connected)
	addr, err := netip.ParseAddrPort(p.Addr)
	if err != nil || p.Path != "direct" {
		b.Fatalf("alice sees %+v, want a direct path", p)
	}
	if tc.After(ta) {
		ta = tc
	}
	return ta.Sub(start), addr
}
