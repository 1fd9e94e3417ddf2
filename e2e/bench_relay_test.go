package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
)

// BenchmarkRelayGoodput sends 200 MiB from alice (port-restricted NAT,
// no relay) to bob directly (bob port-restricted too) and through the
// lab's relay, which bob reaches over UDP (behind a symmetric NAT), or
// over TCP or TLS (his router drops UDP); no shaping: what the relay
// costs on this machine.
func BenchmarkRelayGoodput(b *testing.B) {
	const size = 200 << 20
	for _, tc := range []struct{ name, transport string }{
		{"direct", ""}, {"relay-udp", "udp"}, {"relay-tcp", "tcp"}, {"relay-tls", "tls"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			l := lab.New(b)
			a := startAgent(b, l, l.AddSite(lab.PortRestricted).AddHost(), "alice")
			var bob *agentProc
			want := "direct"
			switch tc.transport {
			case "":
				bob = startAgent(b, l, l.AddSite(lab.PortRestricted).AddHost(), "bob")
			case "udp":
				bob = startRelayed(b, l, l.AddSite(lab.Symmetric).AddHost(), "bob", startTURN(b, l, false), "udp", false)
				want = "relay"
			default:
				site := l.AddSite(lab.PortRestricted)
				host := site.AddHost()
				if err := site.BlockUDP(true); err != nil {
					b.Fatal(err)
				}
				bob = startRelayed(b, l, host, "bob", startTURN(b, l, false), tc.transport, true)
				want = "relay"
			}
			connectPair(b, a, bob)
			waitPeer(b, a, bob.nodeID(), connectTimeout, "connect", func(p control.PeerInfo) bool { return connected(p) && p.Path == want })
			src := randomFile(b, filepath.Join(b.TempDir(), "goodput.bin"), size, 5)
			b.ResetTimer()
			took := sendWait(b, a, src)
			b.StopTimer()
			sameFile(b, src, filepath.Join(bob.downloads(), "goodput.bin"))
			b.ReportMetric(mbps(size, took), "MB/s")
			fmt.Printf("200 MiB %s: %s, %.0f MB/s\n", tc.name, took.Round(time.Millisecond), mbps(size, took))
		})
	}
}
