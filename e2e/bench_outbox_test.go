package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// Outbox benchmarks in the lab (alice behind a full-cone NAT, bob behind a
// port-restricted one): from a file moved into alice's outbox to its
// arrival in bob's downloads. The quiet period, which waits for a file to
// stop changing, is part of what a user waits; each benchmark runs with
// the default (2 s) and with none, to show what the rest costs.

var quietPeriods = []string{"2s", "0s"}

func BenchmarkOutboxDropToArrival(b *testing.B) {
	for _, quiet := range quietPeriods {
		b.Run("quiet="+quiet, func(b *testing.B) {
			x := newTransferLab(b, "")
			x.alice.mustCLI("config", "set", "quiet_period", quiet)
			data := make([]byte, 1<<20)
			var times []time.Duration
			for i := range 10 {
				src := randomFile(b, filepath.Join(b.TempDir(), "f.bin"), 1<<20, uint64(i))
				data, _ = os.ReadFile(src)
				name := fmt.Sprintf("drop-%02d.bin", i)
				arrived := filepath.Join(x.bob.downloads(), name)
				start := time.Now()
				if err := os.Rename(src, filepath.Join(x.alice.outbox(), name)); err != nil {
					b.Fatal(err)
				}
				for !fileExists(arrived) {
					if time.Since(start) > transferTimeout {
						b.Fatalf("%s did not arrive", name)
					}
					time.Sleep(time.Millisecond)
				}
				times = append(times, time.Since(start))
			}
			_ = data
			slices.Sort(times)
			median := (times[4] + times[5]) / 2
			b.ReportMetric(float64(median.Microseconds())/1000, "ms/median")
			fmt.Printf("1 MiB drop to arrival, quiet period %s: median %s of 10 (min %s, max %s)\n",
				quiet, median.Round(time.Millisecond), times[0].Round(time.Millisecond), times[9].Round(time.Millisecond))
		})
	}
}

func BenchmarkOutboxThousandFiles(b *testing.B) {
	const files = 1000
	for _, quiet := range quietPeriods {
		b.Run("quiet="+quiet, func(b *testing.B) {
			x := newTransferLab(b, "")
			x.alice.mustCLI("config", "set", "quiet_period", quiet)
			src := b.TempDir()
			for i := range files {
				randomFile(b, filepath.Join(src, fmt.Sprintf("f%04d", i)), 4096, uint64(i))
			}
			start := time.Now()
			for i := range files {
				name := fmt.Sprintf("f%04d", i)
				if err := os.Rename(filepath.Join(src, name), filepath.Join(x.alice.outbox(), name)); err != nil {
					b.Fatal(err)
				}
			}
			moved := time.Since(start)
			sent := filepath.Join(x.alice.outbox(), "Sent")
			var arrived time.Duration
			for {
				got, _ := os.ReadDir(x.bob.downloads())
				if len(got) == files+1 && arrived == 0 { // and .punchdrop
					arrived = time.Since(start)
				}
				if done, _ := os.ReadDir(sent); len(done) == files {
					break
				}
				if time.Since(start) > transferTimeout {
					b.Fatalf("bob has %d files after %s", len(got)-1, transferTimeout)
				}
				time.Sleep(5 * time.Millisecond)
			}
			delivered := time.Since(start)
			b.ReportMetric(files/arrived.Seconds(), "files/s")
			fmt.Printf("1000 files of 4 KiB, quiet period %s: moved in %s, all at bob after %s (%.0f files/s), all in Sent after %s (%.0f files/s)\n",
				quiet, moved.Round(time.Millisecond), arrived.Round(time.Millisecond), files/arrived.Seconds(), delivered.Round(time.Millisecond), files/delivered.Seconds())
		})
	}
}
