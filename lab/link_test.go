package lab

import (
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/lab/linkem"
)

// The emulated link does what it is told, measured with the tools
// people trust: ping's RTT within 5 % of the set delay, iperf3's rate
// within 5 % of the set rate, and iperf3's loss within 10 % of the set
// loss.
func TestLinkSelfTest(t *testing.T) {
	l := New(t)
	for _, tool := range []string{"ping", "iperf3", "ethtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the link self-test needs %s (apt: iputils-ping, iperf3, ethtool)", tool)
		}
	}
	site, err := l.NewLinkedSite(FullCone)
	if err != nil {
		t.Fatal(err)
	}
	host := site.AddHost()
	server := stunPrimary.String()

	t.Run("delay", func(t *testing.T) {
		// The benchmarks' longer round trip: the link's own latency (a
		// wake-up or two, well under a millisecond each way) is then far
		// inside the 5 %, also on a busy machine.
		oneWay := linkem.Shape{Delay: 75 * time.Millisecond}
		if err := site.SetLink(linkem.Config{Up: oneWay, Down: oneWay}); err != nil {
			t.Fatal(err)
		}
		out, err := host.Exec("ping", "-n", "-q", "-c", "20", "-i", "0.2", server)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`= [\d.]+/([\d.]+)/`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("no RTT in ping's output:\n%s", out)
		}
		rtt, _ := strconv.ParseFloat(string(m[1]), 64)
		t.Logf("ping RTT %.2f ms for 2 × 75 ms", rtt)
		if math.Abs(rtt-150) > 0.05*150 {
			t.Fatalf("RTT %.2f ms, want 150 ms ± 5 %%", rtt)
		}
	})

	t.Run("rate", func(t *testing.T) {
		const rate = 100_000_000
		limit := linkem.Shape{Rate: rate, Delay: 5 * time.Millisecond}
		if err := site.SetLink(linkem.Config{Up: limit, Down: limit}); err != nil {
			t.Fatal(err)
		}
		// Datagrams of 1400 bytes: each frame is 1442 bytes on the link.
		// iperf3 sends at 150 Mbit/s; its report is the sender's rate
		// and the share the receiver lost.
		res := iperf3(t, l, host, "-u", "-b", "150M", "-l", "1400", "-t", "5", "-w", "2M")
		payload := res.End.Sum.BitsPerSecond * (1 - res.End.Sum.LostPercent/100)
		wire := payload * 1442 / 1400
		t.Logf("iperf3 UDP at 150 Mbit/s into a 100 Mbit/s link: %.1f Mbit/s of payload arrived, %.1f Mbit/s on the link", payload/1e6, wire/1e6)
		if math.Abs(wire-rate) > 0.05*rate {
			t.Fatalf("%.1f Mbit/s on the link, want 100 ± 5 %%", wire/1e6)
		}
	})

	t.Run("loss", func(t *testing.T) {
		// 2 % of about 100,000 datagrams: 2,000 ± 45 lost, so ±10 % is
		// more than four standard deviations.
		const loss = 0.02
		if err := site.SetLink(linkem.Config{Up: linkem.Shape{Loss: loss}}); err != nil {
			t.Fatal(err)
		}
		res := iperf3(t, l, host, "-u", "-b", "80M", "-l", "1000", "-t", "10", "-w", "2M")
		got := res.End.Sum.LostPercent / 100
		t.Logf("iperf3 UDP: %d of %d datagrams lost (%.3f %%) for 2 %% set", res.End.Sum.LostPackets, res.End.Sum.Packets, 100*got)
		if res.End.Sum.Packets < 50000 || math.Abs(got-loss) > 0.1*loss {
			t.Fatalf("lost %.3f %% of %d datagrams, want 2 %% ± 10 %%", 100*got, res.End.Sum.Packets)
		}
	})
}

// iperf3Runs numbers the iperf3 runs of this test binary.
var iperf3Runs atomic.Int32

// iperf3Result is the part of iperf3's JSON report the test reads: for
// UDP, the sender's rate and what the receiver lost of it. (-w 2M gives
// the receiver's socket a buffer for the link's bursts.)
type iperf3Result struct {
	Error string `json:"error"`
	End   struct {
		Sum struct {
			BitsPerSecond float64 `json:"bits_per_second"`
			LostPackets   int     `json:"lost_packets"`
			Packets       int     `json:"packets"`
			LostPercent   float64 `json:"lost_percent"`
		} `json:"sum"`
	} `json:"end"`
}

// iperf3 runs an iperf3 server for one test on the STUN server's address
// and a client on host, and returns the client's report. Each run has a
// port of its own, so a server of an earlier run never answers.
func iperf3(t *testing.T, l *Lab, host *Host, args ...string) iperf3Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	port := strconv.Itoa(5201 + int(iperf3Runs.Add(1)))
	srv := commandIn(ctx, l.inet, "iperf3", "-s", "-1", "-B", stunPrimary.String(), "-p", port)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	var out []byte
	var err error
	for range 50 { // the server takes a moment to listen
		out, err = host.Exec(append([]string{"iperf3", "-c", stunPrimary.String(), "-p", port, "-J"}, args...)...)
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("iperf3: %v\n%s", err, out)
	}
	var res iperf3Result
	if err := json.Unmarshal(out, &res); err != nil || res.Error != "" {
		t.Fatalf("iperf3 report: %v %s\n%s", err, res.Error, out)
	}

	return res
}
