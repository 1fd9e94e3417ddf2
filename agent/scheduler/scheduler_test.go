package scheduler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/store"
	"github.com/punchdrop/punchdrop/transfer"
)

// waitTimeout bounds a wait for the scheduler in these tests: it acts in
// microseconds, so seconds mean it hangs.
const waitTimeout = 5 * time.Second

// memQueue is a Queue in memory.
type memQueue struct {
	mu      sync.Mutex // guards following
	records map[string]store.Outgoing
	paused  bool
}

func (q *memQueue) QueuedPeers() ([]string, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var peers []string
	for _, o := range q.records {
		if o.State == store.OutgoingQueued && !slices.Contains(peers, o.Peer) {
			peers = append(peers, o.Peer)
		}
	}
	return peers, nil
}

func (q *memQueue) PendingOutgoing(peer string) ([]store.Outgoing, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []store.Outgoing
	for _, o := range q.records {
		if o.Peer == peer && o.State == store.OutgoingQueued {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b store.Outgoing) int { return cmp.Or(a.Queued.Compare(b.Queued), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}

func (q *memQueue) OutgoingTransfer(id string) (store.Outgoing, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	o, ok := q.records[id]
	if !ok {
		return o, fmt.Errorf("transfer %s: %w", id, store.ErrNotFound)
	}
	return o, nil
}

func (q *memQueue) UpdateOutgoing(id string, fn func(*store.Outgoing)) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	o, ok := q.records[id]
	if !ok {
		return fmt.Errorf("transfer %s: %w", id, store.ErrNotFound)
	}
	fn(&o)
	q.records[id] = o
	return nil
}

func (q *memQueue) Paused() (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.paused, nil
}

func (q *memQueue) SetPaused(paused bool) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.paused = paused
	return nil
}

func (q *memQueue) get(id string) store.Outgoing {
	o, _ := q.OutgoingTransfer(id)
	return o
}

// attempt is one call of the test sender, waiting for its answer.
type attempt struct {
	o      store.Outgoing
	ctx    context.Context
	answer chan error
}

// chanSender hands each attempt to the test.
type chanSender chan attempt

func (c chanSender) Send(ctx context.Context, o store.Outgoing, _ int, progress transfer.Progress) (transfer.Result, error) {
	a := attempt{o, ctx, make(chan error, 1)}
	c <- a
	progress(0, o.Size)
	select {
	case err := <-a.answer:
		if err != nil {
			return transfer.Result{}, err
		}
		progress(o.Size, o.Size)
		return transfer.Result{Name: o.Name, Sent: o.Size}, nil
	case <-ctx.Done():
		return transfer.Result{}, ctx.Err()
	}
}

// stored records what the observer was told was stored.
type stored struct {
	mu   sync.Mutex // guards following
	seen []store.Outgoing
	wake chan struct{}
}

func (s *stored) Attempting(store.Outgoing)      {}
func (s *stored) Progress(store.Outgoing, int64) {}
func (s *stored) Stored(o store.Outgoing) {
	s.mu.Lock()
	s.seen = append(s.seen, o)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// rig is a running Scheduler on an in-memory queue.
type rig struct {
	t        *testing.T
	s        *Scheduler
	queue    *memQueue
	attempts chanSender
	observed *stored
}

// newRig runs a scheduler on a queue holding items, until the test ends.
func newRig(t *testing.T, paused bool, items ...store.Outgoing) *rig {
	t.Helper()
	return newRigChunk(t, paused, transfer.MinChunkSize, items...)
}

// newRigChunk is newRig with new transfers in chunks of chunk bytes.
func newRigChunk(t *testing.T, paused bool, chunk int, items ...store.Outgoing) *rig {
	t.Helper()
	q := &memQueue{records: map[string]store.Outgoing{}, paused: paused}
	for _, o := range items {
		q.records[o.ID] = o
	}
	r := &rig{t: t, queue: q, attempts: make(chanSender, 64), observed: &stored{wake: make(chan struct{}, 1)}}
	r.s = New(Config{Queue: q, Sender: r.attempts, Observer: r.observed, Log: slog.New(slog.DiscardHandler), ChunkSize: chunk})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.s.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

// file is a queued transfer to peer P, queued n seconds after an epoch.
func file(id string, size int64, n int) store.Outgoing {
	at := time.Unix(1_700_000_000+int64(n), 0)
	return store.Outgoing{ID: id, Peer: "P", Name: id, Size: size, State: store.OutgoingQueued, Queued: at, Updated: at}
}

// next returns the next attempt, failing after waitTimeout.
func (r *rig) next() attempt {
	r.t.Helper()
	select {
	case a := <-r.attempts:
		return a
	case <-time.After(waitTimeout):
		r.t.Fatal("no attempt")
		return attempt{}
	}
}

// none fails if an attempt starts within d.
func (r *rig) none(d time.Duration) {
	r.t.Helper()
	select {
	case a := <-r.attempts:
		r.t.Fatalf("unexpected attempt at %s", a.o.ID)
	case <-time.After(d):
	}
}

// waitState waits until the queue holds transfer id in state.
func (r *rig) waitState(id string, state store.OutgoingState) store.Outgoing {
	r.t.Helper()
	deadline := time.After(waitTimeout)
	for {
		if o := r.queue.get(id); o.State == state {
			return o
		}
		select {
		case <-r.observed.wake:
		case <-deadline:
			r.t.Fatalf("%s is %s, want %s", id, r.queue.get(id).State, state)
		}
	}
}

// startAll takes the sendsPerPeer attempts that start at once, checks
// that no more do, and returns them with their IDs sorted.
func (r *rig) startAll() (running []attempt, ids []string) {
	for range sendsPerPeer {
		running = append(running, r.next())
	}
	r.none(50 * time.Millisecond)
	for _, a := range running {
		ids = append(ids, a.o.ID)
	}
	slices.Sort(ids)
	return running, ids
}

// TestSendsOldestFirstWithinLimits: a peer's files start oldest first,
// at most sendsPerPeer at once and at most bigSendsPerPeer larger than a
// chunk; each that ends makes room for the next.
func TestSendsOldestFirstWithinLimits(t *testing.T) {
	var items []store.Outgoing
	for i := range 5 {
		items = append(items, file(fmt.Sprintf("big-%d", i), 10*transfer.MinChunkSize, i))
	}
	for i := range sendsPerPeer + 4 { // more than fit beside the big ones
		items = append(items, file(fmt.Sprintf("small-%02d", i), 10, 10+i))
	}
	r := newRig(t, false, items...)
	running, got := r.startAll()
	want := []string{"big-0", "big-1", "big-2"}
	for i := range sendsPerPeer - 3 {
		want = append(want, fmt.Sprintf("small-%02d", i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("first attempts %v, want %v", got, want)
	}
	for _, a := range running {
		if a.o.ID == "big-0" {
			a.answer <- nil // big-0 done: big-3 may start
		}
	}
	if a := r.next(); a.o.ID != "big-3" {
		t.Fatalf("after a big file, %s started; want big-3", a.o.ID)
	}
	r.waitState("big-0", store.OutgoingDone)
	if o := r.queue.get("big-0"); o.Final != "big-0" || o.Error != "" {
		t.Fatalf("sent record %+v", o)
	}
}

// TestLargerFilesWithinTheirLimit: of the sendsPerPeer files sent at
// once, at most largerSendsPerPeer are larger than a small file (one
// that goes whole, transfer.MaxEagerSize), and small ones fill the rest,
// newer though they are; a larger one that ends makes room for the next
// larger one.
func TestLargerFilesWithinTheirLimit(t *testing.T) {
	const chunk = transfer.DefaultChunkSize
	var items []store.Outgoing
	for i := range 5 {
		items = append(items, file(fmt.Sprintf("a-big-%d", i), 2*chunk, i))
	}
	for i := range largerSendsPerPeer + 10 {
		items = append(items, file(fmt.Sprintf("b-larger-%02d", i), transfer.MaxEagerSize+1, 10+i))
	}
	for i := range sendsPerPeer {
		items = append(items, file(fmt.Sprintf("c-small-%02d", i), transfer.MaxEagerSize, 100+i))
	}
	r := newRigChunk(t, false, chunk, items...)
	running, got := r.startAll()
	var want []string
	for i := range bigSendsPerPeer {
		want = append(want, fmt.Sprintf("a-big-%d", i))
	}
	for i := range largerSendsPerPeer - bigSendsPerPeer {
		want = append(want, fmt.Sprintf("b-larger-%02d", i))
	}
	for i := range sendsPerPeer - largerSendsPerPeer {
		want = append(want, fmt.Sprintf("c-small-%02d", i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("first attempts %v, want %v", got, want)
	}
	for _, a := range running {
		if a.o.ID == "b-larger-00" {
			a.answer <- nil
		}
	}
	if a := r.next(); a.o.ID != fmt.Sprintf("b-larger-%02d", largerSendsPerPeer-bigSendsPerPeer) {
		t.Fatalf("after a larger file, %s started; want the next larger one", a.o.ID)
	}
}

// TestFailedAttempts: an attempt that fails for now goes back to the
// queue with its error and try counted, and its back-off ends at once
// when its peer comes back; one refused for good, or for a peer that is
// gone, fails.
func TestFailedAttempts(t *testing.T) {
	r := newRig(t, false, file("later", 10, 0), file("refused", 10, 1), file("gone", 10, 2))
	answers := map[string]error{
		"later":   errors.New("path lost"),
		"refused": &transfer.Error{Code: transfer.CodeRefused, Reason: "bad name"},
		"gone":    fmt.Errorf("wait: %w", ErrNoPeer),
	}
	for range answers {
		a := r.next()
		a.answer <- answers[a.o.ID]
	}
	if o := r.waitState("refused", store.OutgoingFailed); !strings.Contains(o.Error, "bad name") {
		t.Fatalf("refused record %+v", o)
	}
	r.waitState("gone", store.OutgoingFailed)
	deadline := time.Now().Add(waitTimeout)
	for o := r.queue.get("later"); o.Tries != 1; o = r.queue.get("later") {
		if time.Now().After(deadline) {
			t.Fatalf("the failed attempt was not recorded: %+v", o)
		}
		time.Sleep(time.Millisecond)
	}
	if o := r.queue.get("later"); o.State != store.OutgoingQueued || o.Error != "path lost" {
		t.Fatalf("record after a failure for now %+v", o)
	}
	r.none(minRetry / 4) // backing off
	r.s.PeerUp("P")
	a := r.next()
	if a.o.ID != "later" {
		t.Fatalf("%s retried", a.o.ID)
	}
	a.answer <- nil
	r.waitState("later", store.OutgoingDone)
}

// An attempt cut off because its session moved to a better path starts
// again at once, and does not count as a failure.
func TestMovedSessionRetriesAtOnce(t *testing.T) {
	r := newRig(t, false, file("moving", 10, 0))
	a := r.next()
	start := time.Now()
	a.answer <- fmt.Errorf("send moving: %w", ErrMoved)
	a = r.next()
	if took := time.Since(start); a.o.ID != "moving" || took > minRetry/4 {
		t.Fatalf("attempt at %s %s after the move, want the same file at once", a.o.ID, took)
	}
	if o := r.queue.get("moving"); o.Tries != 0 || o.Error != "" {
		t.Fatalf("a move counted as a failure: %+v", o)
	}
	a.answer <- nil
	r.waitState("moving", store.OutgoingDone)
}

// TestPauseCutsOffAndResumes: pausing cuts the attempts in flight off,
// leaves their files queued and starts none; resuming sends them.
func TestPauseCutsOffAndResumes(t *testing.T) {
	r := newRig(t, false, file("a", 10, 0))
	a := r.next()
	if err := r.s.SetPaused(true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.ctx.Done():
	case <-time.After(waitTimeout):
		t.Fatal("the attempt in flight went on")
	}
	if paused, _ := r.queue.Paused(); !paused || !r.s.Paused() {
		t.Fatal("the pause is not kept")
	}
	r.none(50 * time.Millisecond)
	if o := r.queue.get("a"); o.State != store.OutgoingQueued || o.Tries != 0 {
		t.Fatalf("record after a pause %+v", o)
	}
	if err := r.s.SetPaused(false); err != nil {
		t.Fatal(err)
	}
	r.next().answer <- nil
	r.waitState("a", store.OutgoingDone)
}

// TestStartsPaused: a pause kept from the last run holds the queue.
func TestStartsPaused(t *testing.T) {
	r := newRig(t, true, file("a", 10, 0))
	r.none(50 * time.Millisecond)
	r.s.SetPaused(false)
	r.next().answer <- nil
	r.waitState("a", store.OutgoingDone)
}

// TestCancelAndDropPeer: cancelled transfers and those of a removed peer
// fail with the reason, and are not sent.
func TestCancelAndDropPeer(t *testing.T) {
	r := newRig(t, true, file("a", 10, 0), file("b", 10, 1), file("c", 10, 2))
	r.s.Cancel([]string{"a"}, "taken out of the outbox")
	r.s.DropPeer("P")
	for id, reason := range map[string]string{"a": "taken out of the outbox", "b": "peer removed", "c": "peer removed"} {
		if o := r.queue.get(id); o.State != store.OutgoingFailed || o.Error != reason {
			t.Errorf("%s: %+v, want failed: %s", id, o, reason)
		}
	}
	r.s.SetPaused(false)
	r.none(50 * time.Millisecond)
}

// TestQueuedWakesTheWorker: files queued while the scheduler runs are
// announced and sent.
func TestQueuedWakesTheWorker(t *testing.T) {
	r := newRig(t, false)
	o := file("new", 10, 0)
	r.queue.mu.Lock()
	r.queue.records[o.ID] = o
	r.queue.mu.Unlock()
	r.s.Queued([]store.Outgoing{o})
	r.next().answer <- nil
	r.waitState("new", store.OutgoingDone)
	r.observed.mu.Lock()
	defer r.observed.mu.Unlock()
	if len(r.observed.seen) < 2 || r.observed.seen[0].State != store.OutgoingQueued {
		t.Fatalf("observed %+v; want it queued, then done", r.observed.seen)
	}
}

func TestBackoff(t *testing.T) {
	for _, tt := range []struct {
		tries int
		want  time.Duration
	}{{1, minRetry}, {2, 2 * minRetry}, {3, 4 * minRetry}, {7, maxRetry}, {1000, maxRetry}} {
		if got := backoff(tt.tries); got != tt.want {
			t.Errorf("backoff(%d) = %s, want %s", tt.tries, got, tt.want)
		}
	}
}
