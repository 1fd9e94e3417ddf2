package agent

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/session"
	"github.com/punchdrop/punchdrop/store"
)

// smallFiles is how many files of 4 KiB the small-files figures send.
const smallFiles = 1000

// BenchmarkSmallFiles sends a folder of 1000 files of 4 KiB between two
// agents on loopback and prints files per second: the per-file cost of
// the protocol, the state database and the disk, without NATs.
func BenchmarkSmallFiles(b *testing.B) {
	ctx, cancel := context.WithTimeout(b.Context(), 5*time.Minute)
	defer cancel()
	alice, _, bobHome := connectPairTB(b, ctx)
	dir := smallFilesDir(b)
	for b.Loop() {
		rate := sendSmallFiles(b, ctx, alice, dir, ResolvePaths(bobHome).Downloads)
		b.ReportMetric(rate, "files/s")
		fmt.Printf("small files on loopback: %d files of 4 KiB: %.0f files/s\n", smallFiles, rate)
	}
}

// smallFilesDir writes smallFiles files of 4 KiB into a new folder.
func smallFilesDir(b testing.TB) string {
	b.Helper()
	dir := filepath.Join(b.TempDir(), "small")
	for i := range smallFiles {
		writeFile(b, filepath.Join(dir, fmt.Sprintf("f%04d.txt", i)), make([]byte, 4096))
	}
	return dir
}

// sendSmallFiles sends the folder dir to bob and returns files per
// second, from the request until alice has every file confirmed; it
// then removes the folder from bob's downloads.
func sendSmallFiles(b testing.TB, ctx context.Context, alice *control.Client, dir, bobDownloads string) float64 {
	b.Helper()
	start := time.Now()
	if _, err := alice.Send(ctx, control.SendRequest{Peer: "bob", Paths: []string{dir}}); err != nil {
		b.Fatal(err)
	}
	waitAllDone(b, ctx, alice)
	elapsed := time.Since(start)
	os.RemoveAll(filepath.Join(bobDownloads, filepath.Base(dir)))
	return smallFiles / elapsed.Seconds()
}

// Figures of BenchmarkHistory.
const (
	// historyRecords is the history of the sender in the long case: a
	// million files sent, about what a busy outbox sends in a few years.
	historyRecords = 1_000_000
	// historyBatch is how many records one transaction of the setup
	// writes: large, so a million take seconds, not one commit each.
	historyBatch = 50_000
	// rounds is how many times each history is measured, alternating,
	// so that the load of a shared machine falls on both alike; each
	// round drops dropsPerRound files of 1 MiB and sends 1000 of 4 KiB.
	rounds        = 5
	dropsPerRound = 7
)

// BenchmarkHistory measures what a long history of sent files costs
// the sender: drop-to-arrival of a 1 MiB file through the outbox (quiet
// period 0, median) and the rate of 1000 files of 4 KiB, each between
// two agents on loopback, with historyRecords finished outgoing
// transfers already in the sender's state.db and with none. Then it
// lowers the long history's history_days to 1 and restarts its sender,
// which prunes them all: it drops files while the prune runs, and
// prints the prune's time and state.db's size before and after, and
// after the next open, which compacts it.
func BenchmarkHistory(b *testing.B) {
	for b.Loop() {
		ctx, cancel := context.WithTimeout(b.Context(), 30*time.Minute)
		empty, full := newHistoryPair(b, ctx, 0), newHistoryPair(b, ctx, historyRecords)
		for range rounds {
			for _, p := range []*historyPair{empty, full} {
				p.drops = append(p.drops, dropToArrival(b, p.alicePaths.Outbox, p.bobPaths.Downloads, dropsPerRound)...)
				p.rates = append(p.rates, sendSmallFiles(b, ctx, p.alice, p.small, p.bobPaths.Downloads))
			}
		}
		for _, p := range []*historyPair{empty, full} {
			p.stopAlice()
			p.size, p.inUse = dbSize(b, p.alicePaths.State)
		}
		full.prune(b, ctx)
		cancel()
		b.ReportMetric(float64(median(full.drops))/float64(median(empty.drops)), "drop-ratio")
		b.ReportMetric(median(full.rates)/median(empty.rates), "rate-ratio")
		printHistory(empty, full)
	}
}

// historyPair is a sender, alice, with a history of records finished
// transfers to bob, and what was measured of it.
type historyPair struct {
	records               int
	aliceHome             string
	alicePaths, bobPaths  Paths
	alice                 *control.Client
	stopAlice             func()
	small                 string          // a folder of 1000 files of 4 KiB
	start                 time.Duration   // alice's agent starting: open (and check) state.db, bind, answer
	drops                 []time.Duration // drop to arrival
	rates                 []float64       // files of 4 KiB per second
	size, inUse           int64           // state.db: the file, and its pages in use
	dropsPruning          []time.Duration // drop to arrival while the prune ran
	pruned                int
	pruneTook             time.Duration
	pruneRan              bool // the prune was still running after the drops
	sizeAfter, inUseAfter int64
	reopen                time.Duration // opening state.db again, which compacts it
	sizeNext              int64         // state.db then
}

// newHistoryPair starts alice, whose state.db holds records finished
// transfers to bob, and bob, makes them peers, and sends a first folder
// (a session, a warm page cache).
func newHistoryPair(b *testing.B, ctx context.Context, records int) *historyPair {
	aliceHome, bobHome := b.TempDir(), b.TempDir()
	p := &historyPair{records: records, aliceHome: aliceHome}
	p.alicePaths, p.bobPaths = ResolvePaths(aliceHome), ResolvePaths(bobHome)
	bobID, err := session.LoadOrCreateIdentity(p.bobPaths.Identity)
	if err != nil {
		b.Fatal(err)
	}
	writeConfig(b, aliceHome, "quiet_period", "0s")
	fillHistory(b, p.alicePaths.State, bobID.ID.String(), records)
	start := time.Now()
	p.alice, p.stopAlice = startAgent(b, "alice", aliceHome)
	p.start = time.Since(start)
	bob, _ := startAgent(b, "bob", bobHome)
	connectAgents(b, ctx, p.alice, bob)
	p.small = smallFilesDir(b)
	sendSmallFiles(b, ctx, p.alice, p.small, p.bobPaths.Downloads)
	return p
}

// prune sets history_days to 1 and restarts alice, which forgets the
// whole history; it drops files while that runs.
func (p *historyPair) prune(b *testing.B, ctx context.Context) {
	writeConfig(b, p.aliceHome, "history_days", "1")
	p.alice, p.stopAlice = startAgent(b, "alice", p.aliceHome)
	sendSmallFiles(b, ctx, p.alice, p.small, p.bobPaths.Downloads) // the session again
	p.dropsPruning = dropToArrival(b, p.alicePaths.Outbox, p.bobPaths.Downloads, dropsPerRound)
	_, _, done := pruneLogged(b, p.alicePaths.Log)
	p.pruneRan = !done
	for !done {
		time.Sleep(10 * time.Millisecond)
		_, _, done = pruneLogged(b, p.alicePaths.Log)
	}
	p.pruned, p.pruneTook, _ = pruneLogged(b, p.alicePaths.Log)
	p.stopAlice()
	p.sizeAfter, p.inUseAfter = dbSize(b, p.alicePaths.State)
	start := time.Now()
	s, err := store.Open(p.alicePaths.State) // as the next start does: it compacts
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	p.reopen = time.Since(start)
	p.sizeNext, _ = dbSize(b, p.alicePaths.State)
}

func median[T cmp.Ordered](xs []T) T {
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}

// fillHistory writes n finished outgoing transfers to peer into the
// state database at path, as an outbox sends them: one a few seconds
// after the other, the last two days ago (so status, which shows a day,
// lists none of them), in transactions of historyBatch.
func fillHistory(b testing.TB, path, peer string, n int) {
	b.Helper()
	if n == 0 {
		return
	}
	s, err := store.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	first := start.Add(-2*24*time.Hour - time.Duration(n)*2*time.Second).UTC()
	for i := 0; i < n; i += historyBatch {
		var batch []store.Outgoing
		for j := i; j < min(i+historyBatch, n); j++ {
			at := first.Add(time.Duration(j) * 2 * time.Second)
			name := fmt.Sprintf("photo-%07d.jpg", j)
			batch = append(batch, store.Outgoing{
				ID: newTransferID(at).String(), Peer: peer, Path: "/home/user/Punchdrop/Outbox/" + name, Name: name, Size: 3 << 20,
				State: store.OutgoingDone, Final: name, Outbox: name, Queued: at, Updated: at,
			})
		}
		if err := s.AddOutgoing(batch...); err != nil {
			b.Fatal(err)
		}
	}
	fmt.Printf("history: %d finished transfers written in %s\n", n, time.Since(start).Round(time.Millisecond))
}

// dropToArrival renames n files of 1 MiB into the outbox, one at a
// time, and returns the time each took until it was in downloads.
func dropToArrival(b testing.TB, outbox, downloads string, n int) []time.Duration {
	b.Helper()
	src := b.TempDir() // on the outbox's file system, so a rename moves it
	data := make([]byte, 1<<20)
	var times []time.Duration
	for range n {
		rand.Read(data)
		name := fmt.Sprintf("drop-%x.bin", data[:8])
		writeFile(b, filepath.Join(src, name), data)
		arrived := filepath.Join(downloads, name)
		start := time.Now()
		if err := os.Rename(filepath.Join(src, name), filepath.Join(outbox, name)); err != nil {
			b.Fatal(err)
		}
		for !exists(arrived) {
			if time.Since(start) > time.Minute {
				b.Fatalf("%s did not arrive", name)
			}
			time.Sleep(time.Millisecond)
		}
		times = append(times, time.Since(start))
	}
	return times
}

// pruneLine is the agent's log line of a prune that forgot something.
var pruneLine = regexp.MustCompile(`forgot finished transfers older than history_days" transfers=(\d+) history_days=\d+ took=(\S+)`)

// pruneLogged reads from the agent's log how many transfers its prune
// forgot and how long that took, once it did.
func pruneLogged(b testing.TB, log string) (n int, took time.Duration, done bool) {
	b.Helper()
	data, _ := os.ReadFile(log)
	m := pruneLine.FindSubmatch(data)
	if m == nil {
		return 0, 0, false
	}
	n, _ = strconv.Atoi(string(m[1]))
	took, _ = time.ParseDuration(string(m[2]))
	return n, took, true
}

// dbSize returns the size of the bbolt file at path and the bytes of
// its pages in use (what the buckets take; bbolt keeps freed pages for
// reuse, so the file does not shrink).
func dbSize(b testing.TB, path string) (size, inUse int64) {
	b.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, bk *bolt.Bucket) error {
			st := bk.Stats()
			inUse += int64(st.BranchAlloc + st.LeafAlloc)
			return nil
		})
	})
	return fi.Size(), inUse
}

func printHistory(empty, full *historyPair) {
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	change := func(x, y float64) string { return fmt.Sprintf("(%+.0f %%)", (y/x-1)*100) }
	drop := func(p *historyPair) time.Duration { return median(p.drops) }
	rate := func(p *historyPair) float64 { return median(p.rates) }
	rows := [][3]string{
		{"sender's agent start", ms(empty.start), ms(full.start)},
		{fmt.Sprintf("1 MiB drop to arrival, median of %d", rounds*dropsPerRound), ms(drop(empty)), ms(drop(full)) + " " + change(float64(drop(empty)), float64(drop(full)))},
		{fmt.Sprintf("1000 x 4 KiB, median of %d", rounds), fmt.Sprintf("%.0f files/s", rate(empty)), fmt.Sprintf("%.0f files/s %s", rate(full), change(rate(empty), rate(full)))},
		{"state.db: file / pages in use", mib(empty.size) + " / " + mib(empty.inUse), mib(full.size) + " / " + mib(full.inUse)},
		{"then history_days 1 and a restart:", "", ""},
		{fmt.Sprintf("  1 MiB drop to arrival, median of %d", dropsPerRound), "", fmt.Sprintf("%s (prune still running after them: %v)", ms(median(full.dropsPruning)), full.pruneRan)},
		{"  prune", "", fmt.Sprintf("%d transfers in %s", full.pruned, full.pruneTook)},
		{"  state.db: file / pages in use", "", mib(full.sizeAfter) + " / " + mib(full.inUseAfter)},
		{"  next open of state.db (compacts it)", "", fmt.Sprintf("%s, then %s", ms(full.reopen), mib(full.sizeNext))},
	}
	fmt.Printf("\nhistory in the sender's state.db (two agents on loopback, quiet period 0)\n")
	fmt.Printf("%-42s %-24s %s\n", "", "no history", fmt.Sprintf("%d finished", full.records))
	for _, r := range rows {
		fmt.Printf("%-42s %-24s %s\n", r[0], r[1], r[2])
	}
	fmt.Printf("all drops (ms): no history %v; %d finished %v\n", msList(empty.drops), full.records, msList(full.drops))
	fmt.Printf("all rates (files/s): no history %.0f; %d finished %.0f\n", empty.rates, full.records, full.rates)
}

func msList(ds []time.Duration) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = d.Milliseconds()
	}
	return out
}
