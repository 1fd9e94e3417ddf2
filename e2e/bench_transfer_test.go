package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
)

// Transfer benchmarks in the lab: alice behind a full-cone NAT sends to bob
// behind a port-restricted one. Each prints its figures; none passes or
// fails on speed.

// sendWait runs `punchdrop send --wait` from a to bob and returns how long
// the agent took from queueing the files to the last END_ACK, read from
// its log, so neither the CLI's start nor its polling counts.
func sendWait(b *testing.B, a *agentProc, paths ...string) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	args := append([]string{"--home", a.home, "send", "--wait", "bob"}, paths...)
	if out, err := exec.CommandContext(ctx, punchdropBin, args...).CombinedOutput(); err != nil {
		b.Fatalf("send --wait: %v\n%s", err, out)
	}
	return queuedToSent(b, a)
}

// queuedToSent reads a's log for the time from the last files queued to
// the last file sent.
func queuedToSent(b *testing.B, a *agentProc) time.Duration {
	b.Helper()
	log, err := os.ReadFile(filepath.Join(a.home, "punchdrop.log"))
	if err != nil {
		b.Fatal(err)
	}
	var queued, last time.Time
	for _, line := range strings.Split(string(log), "\n") {
		at, rest, ok := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		t, err := time.Parse(time.RFC3339Nano, at)
		if !ok || err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(rest, "level=INFO msg=queued "):
			queued = t
		case strings.HasPrefix(rest, `level=INFO msg="file sent" `):
			last = t
		}
	}
	if queued.IsZero() || last.Before(queued) {
		b.Fatalf("no queued/sent lines in %s's log", a.name)
	}
	return last.Sub(queued)
}

func mbps(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }

// buildTool builds a helper command of this module into a temp dir.
func buildTool(b *testing.B, pkg string) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
		b.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// serverThenClient starts server in one lab host, gives it time to
// listen, and runs client in another; it returns the client's output.
func serverThenClient(b *testing.B, server, client *exec.Cmd) []byte {
	b.Helper()
	if err := server.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { server.Process.Kill(); server.Wait() }()
	time.Sleep(500 * time.Millisecond)
	out, err := client.Output()
	if err != nil {
		b.Fatalf("%s: %v\n%s", client, err, out)
	}
	return out
}

// BenchmarkTransferGoodput compares a 1 GiB punchdrop transfer with a bare
// quic-go stream and iperf3 TCP on the same path through both NATs.
func BenchmarkTransferGoodput(b *testing.B) {
	const size = 1 << 30
	x := newTransferLab(b, "")
	src := randomFile(b, filepath.Join(b.TempDir(), "gig.bin"), size, 1)
	took := sendWait(b, x.alice, src)
	sameFile(b, src, filepath.Join(x.bob.downloads(), "gig.bin"))
	pd := mbps(size, took)

	quicperf := buildTool(b, "github.com/punchdrop/punchdrop/lab/quicperf")
	alicePublic := x.siteA.PublicIP().String()
	out := serverThenClient(b,
		x.aliceHost.Command(context.Background(), quicperf, "-listen", ":7000", "-bytes", strconv.Itoa(size)),
		x.bobHost.Command(context.Background(), quicperf, "-connect", alicePublic+":7000"))
	var q struct{ Bytes, Seconds float64 }
	if err := json.Unmarshal(out, &q); err != nil {
		b.Fatalf("quicperf output %q: %v", out, err)
	}
	bare := q.Bytes / 1e6 / q.Seconds

	tcp := 0.0
	if _, err := exec.LookPath("iperf3"); err == nil {
		out := serverThenClient(b,
			x.aliceHost.Command(context.Background(), "iperf3", "-s", "-1", "-p", "5201"),
			x.bobHost.Command(context.Background(), "iperf3", "-c", alicePublic, "-p", "5201", "-R", "-n", "1G", "-J"))
		var r struct {
			End struct {
				SumReceived struct {
					BitsPerSecond float64 `json:"bits_per_second"`
				} `json:"sum_received"`
			} `json:"end"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			b.Fatalf("iperf3 output: %v", err)
		}
		tcp = r.End.SumReceived.BitsPerSecond / 8 / 1e6
	} else if os.Getenv("CI") == "true" {
		b.Fatal("iperf3 is not installed")
	}
	b.ReportMetric(pd, "MB/s")
	fmt.Printf("goodput 1 GiB through two NATs: punchdrop %.0f MB/s; bare quic-go %.0f MB/s (punchdrop %.0f%%); iperf3 TCP %.0f MB/s (punchdrop %.0f%%)\n",
		pd, bare, 100*pd/bare, tcp, 100*pd/tcp)
}

// BenchmarkTransferShapedLink sends 100 MiB over a 100 Mbit/s link.
func BenchmarkTransferShapedLink(b *testing.B) {
	const size, link = 100 << 20, 100
	x := newTransferLab(b, "")
	if err := x.siteA.SetRate(link); err != nil {
		b.Fatal(err)
	}
	src := randomFile(b, filepath.Join(b.TempDir(), "shaped.bin"), size, 2)
	took := sendWait(b, x.alice, src)
	mbit := float64(size) * 8 / 1e6 / took.Seconds()
	b.ReportMetric(mbit, "Mbit/s")
	fmt.Printf("100 Mbit/s link (tc tbf): 100 MiB in %s = %.1f Mbit/s, %.0f%% of the link\n", took.Round(time.Millisecond), mbit, mbit/link*100)
}

// peakRSS reads an agent's peak resident memory (VmHWM) in MiB.
func (a *agentProc) peakRSS(b *testing.B) float64 {
	b.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(rest)[0])
			return float64(kb) / 1024
		}
	}
	b.Fatal("no VmHWM")
	return 0
}

// BenchmarkTransferMemory moves 4 GiB and reports both agents' peak RSS.
func BenchmarkTransferMemory(b *testing.B) {
	const size = 4 << 30
	x := newTransferLab(b, "")
	src := randomFile(b, filepath.Join(b.TempDir(), "four.bin"), size, 3)
	took := sendWait(b, x.alice, src)
	sender, receiver := x.alice.peakRSS(b), x.bob.peakRSS(b)
	os.Remove(filepath.Join(x.bob.downloads(), "four.bin"))
	b.ReportMetric(max(sender, receiver), "MiB-peak-RSS")
	fmt.Printf("4 GiB in %s (%.0f MB/s): peak RSS sender %.1f MiB, receiver %.1f MiB\n", took.Round(time.Millisecond), mbps(size, took), sender, receiver)
}

var (
	sentBytes = regexp.MustCompile(`msg="(?:file sent|send failed; will retry)" file=big.bin .*sent_bytes=(\d+)`)
	haveBytes = regexp.MustCompile(`msg="offer accepted" file=big.bin .*have_bytes=(\d+)`)
)

// logSum adds up the numbers re captures in an agent's log.
func logSum(b testing.TB, home string, re *regexp.Regexp) (sum int64, n int) {
	log, err := os.ReadFile(filepath.Join(home, "punchdrop.log"))
	if err != nil {
		b.Fatal(err)
	}
	for _, m := range re.FindAllStringSubmatch(string(log), -1) {
		v, _ := strconv.ParseInt(m[1], 10, 64)
		sum += v
		n++
	}
	return sum, n
}

// BenchmarkTransferResumeCost kills each side with SIGKILL halfway through
// 200 MiB and counts the bytes sent twice: the chunk bytes of every
// attempt, less the file's size. A killed sender cannot log its cut-off
// attempt; it is counted as what the receiver held when the next attempt
// began (what it had in flight beyond that is not counted).
func BenchmarkTransferResumeCost(b *testing.B) {
	for _, victim := range []string{"sender", "receiver"} {
		b.Run(victim, func(b *testing.B) {
			const size = 200 << 20
			x := newTransferLab(b, "")
			if err := x.siteA.SetRate(400); err != nil {
				b.Fatal(err)
			}
			src := randomFile(b, filepath.Join(b.TempDir(), "big.bin"), size, 7)
			x.alice.mustCLI("send", "bob", src)
			var doneAtKill int64
			waitTransfer(b, x.alice, "big.bin", "halfway", func(tr control.TransferInfo) bool {
				doneAtKill = tr.Done
				return tr.Done >= tr.Size/2
			})
			if victim == "sender" {
				x.alice.killHard()
				os.Rename(filepath.Join(x.aliceHome, "punchdrop.log"), filepath.Join(x.aliceHome, "before-kill.log"))
				x.alice = startAgentIn(b, x.lab, x.aliceHost, "alice", x.aliceHome)
			} else {
				x.bob.killHard()
				x.bob = startAgentIn(b, x.lab, x.bobHost, "bob", x.bobHome)
			}
			waitTransfer(b, x.alice, "big.bin", "after restart", isDone)
			sameFile(b, src, filepath.Join(x.bob.downloads(), "big.bin"))
			sent, _ := logSum(b, x.aliceHome, sentBytes)
			if victim == "sender" {
				held, _ := logSum(b, x.aliceHome, haveBytes)
				sent += held
			}
			resent := sent - size
			b.ReportMetric(float64(resent)/(1<<20), "MiB-resent")
			fmt.Printf("kill -9 of the %s at %d%% of 200 MiB: %.2f MiB sent again (%.2f%% of the file)\n",
				victim, doneAtKill*100/size, float64(resent)/(1<<20), float64(resent)*100/size)
		})
	}
}

// BenchmarkTransferSmallFiles sends a folder of 1000 files of 4 KiB.
func BenchmarkTransferSmallFiles(b *testing.B) {
	const files = 1000
	x := newTransferLab(b, "")
	dir := filepath.Join(b.TempDir(), "small")
	for i := range files {
		randomFile(b, filepath.Join(dir, fmt.Sprintf("f%04d", i)), 4096, uint64(i))
	}
	took := sendWait(b, x.alice, dir)
	got, _ := os.ReadDir(filepath.Join(x.bob.downloads(), "small"))
	if len(got) != files {
		b.Fatalf("bob has %d files, want %d", len(got), files)
	}
	rate := files / took.Seconds()
	b.ReportMetric(rate, "files/s")
	fmt.Printf("1000 files of 4 KiB through two NATs: %s, %.0f files/s\n", took.Round(time.Millisecond), rate)
}
