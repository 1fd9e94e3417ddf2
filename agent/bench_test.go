package agent

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
)

// BenchmarkSmallFiles sends a folder of 1000 files of 4 KiB between two
// agents on loopback and prints files per second: the per-file cost of
// the protocol, the state database and the disk, without NATs.
func BenchmarkSmallFiles(b *testing.B) {
	const files = 1000
	ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
	defer cancel()
	alice, _, bobHome := connectPairTB(b, ctx)
	dir := filepath.Join(b.TempDir(), "small")
	for i := range files {
		writeFile(b, filepath.Join(dir, fmt.Sprintf("f%04d.txt", i)), make([]byte, 4096))
	}
	for b.Loop() {
		start := time.Now()
		if _, err := alice.Send(ctx, control.SendRequest{Peer: "bob", Paths: []string{dir}}); err != nil {
			b.Fatal(err)
		}
		waitAllDone(b, ctx, alice)
		elapsed := time.Since(start)
		b.ReportMetric(files/elapsed.Seconds(), "files/s")
		fmt.Printf("small files on loopback: %d files of 4 KiB in %s: %.0f files/s\n", files, elapsed.Round(time.Millisecond), files/elapsed.Seconds())
		os.RemoveAll(filepath.Join(ResolvePaths(bobHome).Downloads, "small"))
	}
}
