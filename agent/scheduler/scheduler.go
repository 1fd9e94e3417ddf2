// Package scheduler sends the agent's queued files: a worker per peer
// takes the peer's queue oldest first, a few files at a time, backs off
// after a failed attempt, and holds everything while sending is paused.
//
// It knows the durable queue (Queue) and how to make one attempt
// (Sender); what happens goes out through an Observer, in the queue's
// own types. How a transfer is shown is not its business.
package scheduler

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/punchdrop/punchdrop/store"
	"github.com/punchdrop/punchdrop/transfer"
)

// Limits and timings of the scheduler.
const (
	// sendsPerPeer is how many files go to one peer at once, each on its
	// own stream: small files spend most of their time in round trips
	// and flushes, so many overlap (and share database commits). On a
	// 50 ms path 1000 files of 4 KiB went at 64 files/s with 16 at once
	// and 130 with 48 (BenchmarkRealPathsSmallFiles); since a small file
	// goes whole in one round trip (transfer.MaxEagerSize), at 270–490
	// with 48 and 450–640 with 64, on a machine shared with other
	// tests. With the lanes of the few big ones it stays within what a
	// peer takes at once (agent's receivesPerPeer, 128: 64 + 3×16), and
	// within the streams QUIC lets a session have open (100).
	sendsPerPeer = 64
	// largerSendsPerPeer bounds the files larger than a small one
	// (transfer.MaxEagerSize) among them: each costs the receiver a
	// buffer of up to a chunk (1 MiB) from its 64 MiB budget per peer,
	// a small file at most 64 KiB.
	largerSendsPerPeer = 48
	// bigSendsPerPeer bounds the files larger than a chunk among those:
	// a few keep the path full, and each costs a few chunk buffers.
	bigSendsPerPeer = 3
	// minRetry and maxRetry bound the back-off after a failed attempt
	// (peer offline, disk full on the other side, path lost).
	minRetry = 2 * time.Second
	maxRetry = 2 * time.Minute
)

// ErrNoPeer is returned (wrapped) by a Sender when the file's peer is
// no longer a peer: the transfer fails at once rather than back off.
var ErrNoPeer = errors.New("not a peer")

// ErrMoved is returned (wrapped) by a Sender when the attempt was cut off
// because its connection moved (a better path, a new session): the file
// is tried again at once, and the attempt does not count as a failure.
var ErrMoved = errors.New("the connection moved")

// Queue is the durable queue of outgoing transfers: the state database.
type Queue interface {
	// QueuedPeers returns the peers with transfers queued for them.
	QueuedPeers() ([]string, error)
	// PendingOutgoing returns the transfers queued for peer, oldest
	// first.
	PendingOutgoing(peer string) ([]store.Outgoing, error)
	OutgoingTransfer(id string) (store.Outgoing, error)
	UpdateOutgoing(id string, fn func(*store.Outgoing)) error
	// Paused and SetPaused keep whether sending is paused, across
	// restarts.
	Paused() (bool, error)
	SetPaused(paused bool) error
}

// Sender makes one attempt at sending a file.
type Sender interface {
	// Send waits for a session with o's peer, opens a stream, and sends
	// o's file in chunks of chunkSize, telling progress what the receiver
	// holds durably. An error wrapping ErrNoPeer says the peer is gone;
	// one wrapping ErrMoved that the attempt may start again at once.
	Send(ctx context.Context, o store.Outgoing, chunkSize int, progress transfer.Progress) (transfer.Result, error)
}

// Observer hears what happens to outgoing transfers. Its methods are
// called from the scheduler's goroutines and must not block.
type Observer interface {
	// Attempting reports that an attempt at o starts.
	Attempting(o store.Outgoing)
	// Progress reports that the receiver holds done bytes of o: first
	// what it held already, then what the attempt added.
	Progress(o store.Outgoing, done int64)
	// Stored reports o as the queue holds it: newly queued, queued again
	// after an attempt that failed or was cut off, done or failed. An
	// attempt at it, if one ran, is over.
	Stored(o store.Outgoing)
}

// Config is what a Scheduler works with.
type Config struct {
	Queue    Queue
	Sender   Sender
	Observer Observer
	Log      *slog.Logger // nil means slog.Default()
	// ChunkSize is the chunk size of new transfers; zero means
	// transfer.DefaultChunkSize.
	ChunkSize int
}

// Scheduler sends queued files to their peers. Make one with New; it
// sends once Run runs.
type Scheduler struct {
	queue    Queue
	sender   Sender
	observer Observer
	log      *slog.Logger

	wg sync.WaitGroup // the workers
	mu sync.Mutex     // guards following
	// ctx is Run's; nil until it runs.
	ctx context.Context
	// workers holds the wake-up channel of each peer's worker.
	workers   map[string]chan struct{}
	retryAt   map[string]retry // when a failed transfer may try again, by ID
	chunkSize int
	// sendCtx is what attempts run under; pausing cancels it, and
	// resuming makes a new one.
	sendCtx     context.Context
	cancelSends context.CancelFunc
	paused      bool
}

// retry is when a failed transfer to peer may try again.
type retry struct {
	peer string
	at   time.Time
}

// New returns a Scheduler that sends what cfg.Queue holds.
func New(cfg Config) *Scheduler {
	s := &Scheduler{
		queue: cfg.Queue, sender: cfg.Sender, observer: cfg.Observer, log: cfg.Log,
		workers: map[string]chan struct{}{}, retryAt: map[string]retry{},
		chunkSize: cfg.ChunkSize,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.chunkSize == 0 {
		s.chunkSize = transfer.DefaultChunkSize
	}
	return s
}

// Run starts a worker for every peer with queued files and sends until
// ctx ends; it returns once every attempt has stopped.
func (s *Scheduler) Run(ctx context.Context) {
	paused, err := s.queue.Paused()
	if err != nil {
		s.log.Error("read pause", "err", err)
	}
	s.mu.Lock()
	s.ctx = ctx
	s.sendCtx, s.cancelSends = context.WithCancel(ctx)
	if s.paused = paused; paused {
		s.cancelSends()
		s.log.Info("sending is paused; punchdrop resume starts it")
	}
	s.mu.Unlock()
	peers, err := s.queue.QueuedPeers()
	if err != nil {
		s.log.Error("read queue", "err", err)
	}
	for _, p := range peers {
		s.kick(p)
	}
	<-ctx.Done()
	s.wg.Wait()
}

// Queued announces transfers just added to the queue and wakes their
// peers' workers.
func (s *Scheduler) Queued(items []store.Outgoing) {
	peers := map[string]bool{}
	for _, o := range items {
		s.observer.Stored(o)
		peers[o.Peer] = true
	}
	for p := range peers {
		s.kick(p)
	}
}

// Cancel fails the transfers with these IDs that are still queued.
func (s *Scheduler) Cancel(ids []string, reason string) {
	for _, id := range ids {
		var o store.Outgoing
		err := s.queue.UpdateOutgoing(id, func(r *store.Outgoing) {
			if r.State == store.OutgoingQueued {
				r.State, r.Error, r.Updated = store.OutgoingFailed, reason, time.Now().UTC()
			}
			o = *r
		})
		if err != nil {
			s.log.Error("cancel transfer", "id", id, "err", err)
			continue
		}
		s.observer.Stored(o)
	}
}

// DropPeer fails the files still queued for a peer that was removed;
// ones in flight fail as their session closes.
func (s *Scheduler) DropPeer(peer string) {
	queued, err := s.queue.PendingOutgoing(peer)
	if err != nil {
		s.log.Error("read queue", "err", err)
		return
	}
	for _, o := range queued {
		s.setState(o, store.OutgoingFailed, "peer removed", nil)
	}
}

// PeerUp sends a peer's queued files at once, however long their
// back-off still had to run: the peer just connected.
func (s *Scheduler) PeerUp(peer string) {
	s.mu.Lock()
	for id, r := range s.retryAt {
		if r.peer == peer {
			delete(s.retryAt, id)
		}
	}
	_, working := s.workers[peer]
	s.mu.Unlock()
	if working {
		s.kick(peer)
	}
}

// SetChunkSize sets the chunk size of new transfers.
func (s *Scheduler) SetChunkSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chunkSize = n
}

func (s *Scheduler) chunk() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chunkSize
}

// SetPaused stops sending (cutting off the files in flight, which keep
// what the receiver holds) or resumes it. A pause lasts across restarts.
func (s *Scheduler) SetPaused(paused bool) error {
	s.mu.Lock()
	if s.ctx == nil || s.paused == paused {
		s.mu.Unlock()
		return nil
	}
	if err := s.queue.SetPaused(paused); err != nil {
		s.mu.Unlock()
		return err
	}
	s.paused = paused
	if paused {
		s.cancelSends()
	} else {
		s.sendCtx, s.cancelSends = context.WithCancel(s.ctx)
	}
	peers := slices.Collect(maps.Keys(s.workers))
	s.mu.Unlock()
	s.log.Info("sending", "paused", paused)
	for _, p := range peers {
		s.kick(p)
	}
	return nil
}

// Paused reports whether sending is paused.
func (s *Scheduler) Paused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paused
}

// sending returns the context attempts start under, and whether sending
// is paused.
func (s *Scheduler) sending() (context.Context, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sendCtx, s.paused
}

// kick wakes peer's worker, starting it if needed.
func (s *Scheduler) kick(peer string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx == nil || s.ctx.Err() != nil {
		return
	}
	if wake, ok := s.workers[peer]; ok {
		offer(wake)
		return
	}
	wake := make(chan struct{}, 1)
	s.workers[peer] = wake
	ctx := s.ctx
	s.wg.Go(func() { s.worker(ctx, peer, wake) })
}

func offer(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
