package scheduler

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/punchdrop/punchdrop/store"
	"github.com/punchdrop/punchdrop/transfer"
)

// idleWait is how long a worker with nothing to retry sleeps before it
// looks at its queue again: a wake-up (new files, a finished attempt, a
// peer back) comes long before it in practice.
const idleWait = time.Hour

// worker sends peer's queued files, a few at a time, oldest first, and
// retries failed ones after their back-off. It keeps the peer's queue in
// memory and reads it again only when woken (new files) or when an
// attempt failed, so a long queue costs one read per change, not one
// per file; and a read costs the peer's queue, not the history.
func (s *Scheduler) worker(ctx context.Context, peer string, wake chan struct{}) {
	var running sync.WaitGroup
	defer running.Wait()
	active := map[string]sizeClass{} // running attempts
	done := make(chan attemptResult, sendsPerPeer)
	var queue []store.Outgoing
	reload := true
	for {
		if reload {
			queue, reload = s.pending(peer, active), false
		}
		wait := idleWait
		now := time.Now()
		waiting := queue[:0]
		sendCtx, paused := s.sending()
		for _, o := range queue {
			if paused {
				waiting = append(waiting, o)
				continue
			}
			if at := s.retryTime(o.ID); at.After(now) {
				wait = min(wait, at.Sub(now))
				waiting = append(waiting, o)
				continue
			}
			class := classOf(o.Size, s.chunk())
			if len(active) == sendsPerPeer || !class.fits(active) {
				waiting = append(waiting, o)
				continue
			}
			active[o.ID] = class
			running.Go(func() {
				done <- attemptResult{o.ID, s.send(sendCtx, o)}
			})
		}
		queue = waiting
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case r := <-done:
			delete(active, r.id)
			reload = r.queued // it failed or was cut off: back in the queue
		case <-wake:
			reload = true
		case <-timer.C:
		}
		timer.Stop()
	}
}

// attemptResult is how an attempt ended, for the worker.
type attemptResult struct {
	id     string
	queued bool // it stays queued: failed for now, or cut off
}

// sizeClass sorts files by what sending them costs, for the limits of
// files sent at once.
type sizeClass uint8

const (
	smallFile  sizeClass = iota // goes whole: transfer.MaxEagerSize at most
	largerFile                  // a chunk at most
	bigFile                     // more than a chunk
)

func classOf(size int64, chunk int) sizeClass {
	switch {
	case size > int64(chunk):
		return bigFile
	case size > transfer.MaxEagerSize:
		return largerFile
	}
	return smallFile
}

// fits reports whether one more file of class c may start beside the
// attempts running (sendsPerPeer aside): at most largerSendsPerPeer
// larger than small, of which at most bigSendsPerPeer big.
func (c sizeClass) fits(active map[string]sizeClass) bool {
	if c == smallFile {
		return true
	}
	larger, big := 0, 0
	for _, a := range active {
		if a != smallFile {
			larger++
		}
		if a == bigFile {
			big++
		}
	}
	return larger < largerSendsPerPeer && (c != bigFile || big < bigSendsPerPeer)
}

// pending lists peer's queued transfers that are not running, oldest
// first.
func (s *Scheduler) pending(peer string, active map[string]sizeClass) []store.Outgoing {
	queued, err := s.queue.PendingOutgoing(peer)
	if err != nil {
		s.log.Error("read queue", "peer", shortID(peer), "err", err)
		return nil
	}
	return slices.DeleteFunc(queued, func(o store.Outgoing) bool {
		_, running := active[o.ID]
		return running
	})
}

// retryTime is when a failed transfer may try again; zero if it has not
// failed.
func (s *Scheduler) retryTime(id string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retryAt[id].at
}

// send makes one attempt at an outgoing transfer. It reports whether the
// transfer is still queued afterwards (failed for now, or cut off by a
// pause).
func (s *Scheduler) send(ctx context.Context, o store.Outgoing) (queued bool) {
	// The record may have changed since the worker read the queue:
	// cancelled, or its source moved with a renamed peer folder.
	cur, err := s.queue.OutgoingTransfer(o.ID)
	if err != nil || cur.State != store.OutgoingQueued {
		s.forgetRetry(o.ID)
		return false
	}
	o = cur
	s.observer.Attempting(o)
	accepted := false
	res, err := s.sender.Send(ctx, o, s.chunk(), func(done, _ int64) {
		if !accepted { // the first report is what the receiver already held
			accepted = true
			s.log.Info("offer accepted", "file", o.Name, "peer", shortID(o.Peer), "have_bytes", done)
		}
		s.observer.Progress(o, done)
	})
	if ctx.Err() != nil {
		// Paused or shutting down: it stays queued, and resumes.
		s.forgetRetry(o.ID)
		s.observer.Stored(o)
		return true
	}
	return s.finish(o, res, err)
}

// finish records the outcome of an attempt. Its log lines carry the
// bytes the attempt put on the wire (sent_bytes), which shows what a
// resume saved.
func (s *Scheduler) finish(o store.Outgoing, res transfer.Result, err error) (queued bool) {
	s.forgetRetry(o.ID)
	state, msg := store.OutgoingDone, ""
	switch {
	case err == nil:
		s.log.Info("file sent", "file", o.Name, "peer", shortID(o.Peer), "stored_as", res.Name, "sent_bytes", res.Sent, "lanes", res.Lanes)
	case errors.Is(err, ErrMoved):
		state, msg = store.OutgoingQueued, ""
		s.log.Info("connection moved; resuming at once", "file", o.Name, "peer", shortID(o.Peer), "sent_bytes", res.Sent)
	case transfer.Retryable(err) && !errors.Is(err, ErrNoPeer):
		state, msg = store.OutgoingQueued, err.Error()
		o.Tries++
		delay := backoff(o.Tries)
		s.mu.Lock()
		s.retryAt[o.ID] = retry{peer: o.Peer, at: time.Now().Add(delay)}
		s.mu.Unlock()
		s.log.Warn("send failed; will retry", "file", o.Name, "peer", shortID(o.Peer), "in", delay, "sent_bytes", res.Sent, "err", err)
	default:
		state, msg = store.OutgoingFailed, err.Error()
		s.log.Error("send failed", "file", o.Name, "peer", shortID(o.Peer), "sent_bytes", res.Sent, "err", err)
	}
	tries, final := o.Tries, res.Name
	s.setState(o, state, msg, func(r *store.Outgoing) { r.Tries, r.Final = tries, final })
	return state == store.OutgoingQueued
}

// backoff is how long a transfer that failed tries times waits before
// its next attempt: doubling from minRetry, at most maxRetry.
func backoff(tries int) time.Duration {
	return min(minRetry<<min(tries-1, 10), maxRetry)
}

// setState records a transfer's new state (and what more changes) and
// tells the observer.
func (s *Scheduler) setState(o store.Outgoing, state store.OutgoingState, errMsg string, more func(*store.Outgoing)) {
	now := time.Now().UTC()
	change := func(r *store.Outgoing) {
		r.State, r.Error, r.Updated = state, errMsg, now
		if more != nil {
			more(r)
		}
	}
	change(&o)
	if err := s.queue.UpdateOutgoing(o.ID, change); err != nil {
		s.log.Error("record transfer state", "file", o.Name, "err", err)
	}
	s.observer.Stored(o)
}

// forgetRetry ends a transfer's back-off.
func (s *Scheduler) forgetRetry(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.retryAt, id)
}

func shortID(id string) string { return id[:min(len(id), 8)] }
