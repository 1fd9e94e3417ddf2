package store

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/punchdrop/punchdrop/transfer"
)

// holdWriter holds bbolt's writer lock until the returned function is
// called, as a slow commit does.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	held, let := make(chan struct{}), make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.db.Update(func(*bolt.Tx) error {
			close(held)
			<-let
			return nil
		})
	}()
	<-held
	return func() { close(let); <-done }
}

// TestUpdatesWaitingCommitTogether: updates that come while a commit is
// under way all go in the next one, not a commit each; an update that
// fails gets its own error and takes none of the others down.
func TestUpdatesWaitingCommitTogether(t *testing.T) {
	s, _ := openTemp(t)
	release := holdWriter(t, s)
	const n = 20
	var mu sync.Mutex
	txs := map[int]bool{} // transactions the successful updates ran in
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.batch(func(tx *bolt.Tx) error {
				if i == 7 {
					return fmt.Errorf("update %d refuses", i)
				}
				mu.Lock()
				txs[tx.ID()] = true
				mu.Unlock()
				return tx.Bucket(bucketMeta).Put(fmt.Appendf(nil, "k%d", i), []byte{byte(i)})
			})
		})
	}
	// Let them all queue behind the held commit.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.group.mu.Lock()
		queued := len(s.group.calls)
		s.group.mu.Unlock()
		if queued >= n-1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	release()
	wg.Wait()
	for i, err := range errs {
		if (i == 7) != (err != nil) {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	if len(txs) > 2 {
		t.Fatalf("%d updates that came during one commit took %d commits, want at most 2", n-1, len(txs))
	}
	s.db.View(func(tx *bolt.Tx) error {
		for i := range n {
			if got := tx.Bucket(bucketMeta).Get(fmt.Appendf(nil, "k%d", i)); (i == 7) != (got == nil) {
				t.Errorf("key of update %d: %v", i, got)
			}
		}
		return nil
	})
}

// TestLoneUpdateCommitsAtOnce: an update that comes while nothing
// commits does not wait for company.
func TestLoneUpdateCommitsAtOnce(t *testing.T) {
	s, _ := openTemp(t)
	rec := transfer.Record{ID: "a", Peer: "P", Size: 10, State: transfer.Receiving}
	if err := s.StartIncoming(rec); err != nil {
		t.Fatal(err)
	}
	if _, err := s.IncomingTransfer("P", "a"); err != nil {
		t.Fatalf("the update is not there once it returned: %v", err)
	}
	if err := s.FinishIncoming("P", "nothing", "x", time.Now()); !errors.Is(err, transfer.ErrNoRecord) {
		t.Fatalf("a failing update alone: %v", err)
	}
}

// BenchmarkSmallFilesArriving records what a receiver records for each
// small file (StartIncoming, RecordChunks, FinishIncoming) from 48
// files arriving at once, as the agent's scheduler sends them, and
// reports files/s and the mean wait of one update.
func BenchmarkSmallFilesArriving(b *testing.B) {
	const inFlight = 48
	s, _ := openTemp(b)
	hash := make([]byte, 32)
	var mu sync.Mutex
	var waited time.Duration
	var updates int
	timed := func(fn func() error) {
		start := time.Now()
		if err := fn(); err != nil {
			b.Error(err)
		}
		d := time.Since(start)
		mu.Lock()
		waited += d
		updates++
		mu.Unlock()
	}
	files := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range inFlight {
		wg.Go(func() {
			for i := range files {
				id := fmt.Sprintf("%032x", i)
				rec := transfer.Record{ID: id, Peer: "P", Name: id, Size: 4096, ChunkSize: 1 << 20, State: transfer.Receiving, Started: time.Now(), Updated: time.Now()}
				timed(func() error { return s.StartIncoming(rec) })
				timed(func() error { return s.RecordChunks("P", id, []uint32{0}, [][]byte{hash}) })
				timed(func() error { return s.FinishIncoming("P", id, id, time.Now()) })
			}
		})
	}
	for i := range b.N {
		files <- i
	}
	close(files)
	wg.Wait()
	took := time.Since(start)
	b.ReportMetric(float64(b.N)/took.Seconds(), "files/s")
	b.ReportMetric(float64(waited.Microseconds())/1000/float64(updates), "ms/update")
}
