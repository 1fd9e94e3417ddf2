package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/lab/linkem"
	"github.com/punchdrop/punchdrop/testutil"
)

// linkRig is a lab with one linked full-cone site and its host, for the
// link's tests.
func linkRig(tb testing.TB) (*Lab, *Site, *Host) {
	tb.Helper()
	l := New(tb)
	for _, tool := range []string{"ping", "iperf3", "ethtool"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Fatalf("the link tests need %s (apt: iputils-ping, iperf3, ethtool)", tool)
		}
	}
	site, err := l.NewLinkedSite(FullCone)
	if err != nil {
		tb.Fatal(err)
	}
	return l, site, site.AddHost()
}

// pingRTT pings the STUN server from host and returns the average round
// trip in ms, or -1 when no answer came back.
func pingRTT(tb testing.TB, host *Host, count int) float64 {
	tb.Helper()
	out, err := host.Exec("ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "1", stunPrimary.String())
	m := regexp.MustCompile(`= [\d.]+/([\d.]+)/`).FindSubmatch(out)
	if m == nil {
		if err == nil {
			tb.Fatalf("no RTT in ping's output:\n%s", out)
		}
		return -1
	}
	rtt, _ := strconv.ParseFloat(string(m[1]), 64)
	return rtt
}

// udpRate runs iperf3 UDP at offer Mbit/s in 1400-byte datagrams and
// returns what arrived, in Mbit/s of link frames (1442 bytes each).
func udpRate(tb testing.TB, l *Lab, host *Host, offer, seconds int) float64 {
	tb.Helper()
	res := iperf3(tb, l, host, "-u", "-b", strconv.Itoa(offer)+"M", "-l", "1400", "-t", strconv.Itoa(seconds), "-w", "2M")
	return res.End.Sum.BitsPerSecond * (1 - res.End.Sum.LostPercent/100) * 1442 / 1400 / 1e6
}

// TestLink checks what the emulated link does, in ways the machine's load
// cannot upset: a frame never leaves before its time, a dead link passes
// nothing, a lossy one loses about what it is told, and a slow one never
// passes more than its rate. How close it comes to its settings is
// measured by BenchmarkLinkSelfTest (make bench).
func TestLink(t *testing.T) {
	l, site, host := linkRig(t)
	oneWay := linkem.Shape{Delay: 25 * time.Millisecond}
	if err := site.SetLink(linkem.Config{Up: oneWay, Down: oneWay}); err != nil {
		t.Fatal(err)
	}
	// Early by at most the sender's timer slack, each way; late by a
	// busy machine's scheduling, which a second covers many times over.
	if rtt := pingRTT(t, host, 5); rtt < 49 || rtt > 1050 {
		t.Fatalf("RTT %.2f ms through a link of 2 × 25 ms", rtt)
	}
	if err := site.SetLink(linkem.Config{Up: linkem.Shape{Loss: 1}}); err != nil {
		t.Fatal(err)
	}
	if rtt := pingRTT(t, host, 3); rtt >= 0 {
		t.Fatalf("a ping came back (%.2f ms) through a link that loses everything", rtt)
	}
	// 2 % of the frames the link saw, counted by the link itself: about
	// 20,000 frames give 400 ± 20 losses, so 1–3 % is five deviations.
	if err := site.SetLink(linkem.Config{Up: linkem.Shape{Loss: 0.02, Rate: 10_000_000}}); err != nil {
		t.Fatal(err)
	}
	before, _ := site.LinkStats()
	got := udpRate(t, l, host, 20, 12)
	after, _ := site.LinkStats()
	frames, lost := after.Frames-before.Frames, after.Lost-before.Lost
	t.Logf("10 Mbit/s link with 2 %% loss: %.2f Mbit/s arrived of 20 offered; the link lost %d of %d frames", got, lost, frames)
	if share := float64(lost) / float64(frames); frames < 15000 || share < 0.01 || share > 0.03 {
		t.Fatalf("the link lost %d of %d frames (%.2f %%), want about 2 %%", lost, frames, 100*share)
	}
	if got > 10*1.02 {
		t.Fatalf("%.2f Mbit/s through a 10 Mbit/s link", got)
	}
}

// BenchmarkLinkSelfTest measures how well the emulated link keeps to its
// settings with the tools people trust, and prints each figure beside
// its setting and the tolerance the lab holds it to: ping's RTT within
// 5 %, iperf3's rate within 5 %, iperf3's loss within 10 %. Run it on a
// quiet machine: the bridge is a userspace program.
func BenchmarkLinkSelfTest(b *testing.B) {
	l, site, host := linkRig(b)
	report := func(what string, got, want, tolerance float64, unit string) {
		verdict := "within"
		if math.Abs(got-want) > tolerance*want {
			verdict = "OUT OF"
		}
		b.Logf("%-28s %8.2f %s for %g %s: %s ±%g %%", what, got, unit, want, unit, verdict, 100*tolerance)
	}
	for _, oneWay := range []time.Duration{25 * time.Millisecond, 75 * time.Millisecond} {
		shape := linkem.Shape{Delay: oneWay}
		if err := site.SetLink(linkem.Config{Up: shape, Down: shape}); err != nil {
			b.Fatal(err)
		}
		report("ping RTT", pingRTT(b, host, 20), float64(2*oneWay)/float64(time.Millisecond), 0.05, "ms")
	}
	limit := linkem.Shape{Rate: 100_000_000, Delay: 5 * time.Millisecond}
	if err := site.SetLink(linkem.Config{Up: limit, Down: limit}); err != nil {
		b.Fatal(err)
	}
	report("iperf3 UDP rate (on the link)", udpRate(b, l, host, 110, 8), 100, 0.05, "Mbit/s")
	// 2 % of about 100,000 datagrams: 2,000 ± 45 lost, so ±10 % is more
	// than four standard deviations.
	if err := site.SetLink(linkem.Config{Up: linkem.Shape{Loss: 0.02}}); err != nil {
		b.Fatal(err)
	}
	res := iperf3(b, l, host, "-u", "-b", "80M", "-l", "1000", "-t", "10", "-w", "2M")
	report("iperf3 UDP loss", res.End.Sum.LostPercent, 2, 0.10, "%")
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
func iperf3(t testing.TB, l *Lab, host *Host, args ...string) iperf3Result {
	t.Helper()
	// A UDP test starts with one datagram from the client, which a lossy
	// link may drop: iperf3 then gives up ("unable to read from stream
	// socket"). That is the link doing its job, and the run is made again.
	for attempt := 1; ; attempt++ {
		res := iperf3Once(t, l, host, args...)
		if !strings.Contains(res.Error, "stream socket") || attempt == 3 {
			if res.Error != "" {
				t.Fatalf("iperf3 report: %s", res.Error)
			}
			return res
		}
		t.Logf("iperf3's first datagram was lost (%s); again", res.Error)
	}
}

// iperf3Once runs one iperf3 client against a server of its own in the
// lab's internet and returns its report.
func iperf3Once(t testing.TB, l *Lab, host *Host, args ...string) iperf3Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	port := strconv.Itoa(5201 + int(iperf3Runs.Add(1)))
	srv := commandIn(ctx, l.inet, "iperf3", "-s", "-1", "-B", stunPrimary.String(), "-p", port)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	// The server takes a moment to listen; a client that comes too soon
	// is refused (and iperf3 may say so only inside its JSON). Whether it
	// listens is asked of the kernel: a test connection would be the one
	// client this server (-1) takes.
	testutil.WaitFor(t, 10*time.Second, "iperf3 to listen", func() bool {
		out, err := l.Exec("ss", "-Hltn", "sport = :"+port)
		return err == nil && len(bytes.TrimSpace(out)) > 0
	})
	out, err := host.Exec(append([]string{"iperf3", "-c", stunPrimary.String(), "-p", port, "-J"}, args...)...)
	var res iperf3Result
	if jerr := json.Unmarshal(out, &res); jerr != nil {
		t.Fatalf("iperf3: %v, report: %v\n%s", err, jerr, out)
	}
	if err != nil && res.Error == "" {
		t.Fatalf("iperf3: %v\n%s", err, out)
	}
	return res
}
