package agent

import (
	"sync"
	"time"
)

// progressInterval is the most often a transfer's progress is published:
// smooth bars without flooding the event stream.
const progressInterval = 250 * time.Millisecond

// rateWeight is the weight of the latest interval in the smoothed rate:
// a bar's speed settles within a second or two, and one slow interval
// does not make it jump.
const rateWeight = 0.3

// direction tells an outgoing transfer from an incoming one.
type direction uint8

const (
	outgoing direction = iota
	incoming
)

// liveKey names one moving transfer. A peer picks the IDs of what it
// sends, so an ID alone could name one of ours too: the key has the
// direction and the peer as well.
type liveKey struct {
	dir      direction
	peer, id string
}

// liveTransfer is the progress of one moving transfer.
type liveTransfer struct {
	size, done int64
	rateBps    float64 // smoothed bytes per second
	etaSec     float64 // seconds left at that rate; 0 while unknown

	seen      bool // update was called before
	lastDone  int64
	lastTime  time.Time
	published time.Time
}

// update records done bytes, smoothing the rate, and says whether it is
// time to publish.
func (l *liveTransfer) update(done int64, now time.Time) bool {
	if !l.seen {
		// The first report is what the receiver held already (a resume):
		// not bytes moved now.
		l.seen, l.lastDone, l.lastTime = true, done, now
	}
	if dt := now.Sub(l.lastTime); dt >= progressInterval {
		rate := float64(done-l.lastDone) / dt.Seconds()
		if l.rateBps == 0 {
			l.rateBps = rate
		} else {
			l.rateBps = (1-rateWeight)*l.rateBps + rateWeight*rate
		}
		l.lastDone, l.lastTime = done, now
	}
	l.done = done
	l.etaSec = 0
	if l.rateBps > 0 {
		l.etaSec = float64(l.size-done) / l.rateBps
	}
	if now.Sub(l.published) < progressInterval && done != l.size {
		return false
	}
	l.published = now
	return true
}

// progressTracker keeps the live progress of the transfers moving now,
// in both directions.
type progressTracker struct {
	mu     sync.Mutex // guards following
	moving map[liveKey]*liveTransfer
}

func newProgressTracker() *progressTracker {
	return &progressTracker{moving: map[liveKey]*liveTransfer{}}
}

// report records that a transfer of size bytes has done bytes held by
// its receiver, starting to track it if it was not. It returns the
// progress, whether the transfer is new to the tracker, and whether it
// is time to publish.
func (t *progressTracker) report(k liveKey, size, done int64, now time.Time) (l liveTransfer, started, publish bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.moving[k]
	if p == nil {
		p = &liveTransfer{size: size, lastTime: now, published: now}
		t.moving[k] = p
		started = true
	}
	publish = p.update(done, now)
	return *p, started, publish
}

// get returns a moving transfer's progress.
func (t *progressTracker) get(k liveKey) (liveTransfer, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.moving[k]
	if !ok {
		return liveTransfer{}, false
	}
	return *p, true
}

// stop ends a transfer's progress and returns its last.
func (t *progressTracker) stop(k liveKey) (liveTransfer, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.moving[k]
	delete(t.moving, k)
	if !ok {
		return liveTransfer{}, false
	}
	return *p, true
}
