package agent

import (
	"sync"
	"time"
)

// progressInterval is the most often a transfer's progress is published:
// smooth bars without flooding the event stream.
const progressInterval = 250 * time.Millisecond

// rateWindow is how far back the shown rate looks. On a lossy path
// the receiver's count moves in chunk-sized steps, several at once when
// lanes finish together and none for seconds while a chunk is resent.
// The rate is the bytes of the steps in the last rateWindow over the
// time they took, from the step before them to the latest: it neither
// swings with each step nor with the silences between them. A silence
// longer than twice the usual gap between steps is a stall, and the
// rate counts it (it falls, down to unknown once the window holds no
// step), rather than showing the last rate with an ETA that never moves.
// Ten seconds holds several chunks at about 1 MiB/s and settles soon
// after a start.
const rateWindow = 10 * time.Second

// rateWarmup is how much history a rate needs before it is shown at all:
// the first interval of a transfer is a handshake and a window's ramp-up,
// whose rate would promise far too long or too short an ETA.
const rateWarmup = 2 * time.Second

// rateSample is what the receiver held at a time.
type rateSample struct {
	at   time.Time
	done int64
}

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
	rateBps    float64 // bytes per second over the last rateWindow; 0 while unknown
	etaSec     float64 // seconds left at that rate; 0 while unknown

	seen      bool         // update was called before
	samples   []rateSample // the start, then steps (done grew), one per progressInterval at most, oldest first, covering rateWindow
	stepAt    time.Time    // when done last grew
	published time.Time
}

// update records done bytes and says whether it is time to publish.
func (l *liveTransfer) update(done int64, now time.Time) bool {
	switch last := len(l.samples) - 1; {
	case !l.seen:
		// The first report is what the receiver held already (a resume):
		// not bytes moved now. The rate is measured from here.
		l.seen, l.stepAt = true, now
		l.samples = append(l.samples[:0], rateSample{now, done})
	case done <= l.done:
		// No step: a chunk on its way was lost, and is counted out.
	case last == 0 || now.Sub(l.samples[last].at) >= progressInterval:
		l.samples = append(l.samples, rateSample{now, done})
		l.stepAt = now
	default:
		// Close to the last step: one step with it.
		l.samples[last].done = done
		l.stepAt = now
	}
	l.done = done
	l.measure(now)
	if now.Sub(l.published) < progressInterval && done != l.size {
		return false
	}
	l.published = now
	return true
}

// measure sets the rate and ETA as of now (see rateWindow). Samples
// older than the window go, but for the newest of them: the step the
// window's bytes are counted from.
func (l *liveTransfer) measure(now time.Time) {
	drop := 0
	for drop+1 < len(l.samples) && now.Sub(l.samples[drop+1].at) >= rateWindow {
		drop++
	}
	l.samples = append(l.samples[:0], l.samples[drop:]...)
	l.rateBps, l.etaSec = 0, 0
	steps := len(l.samples) - 1 // every sample but the first is a step
	if steps <= 0 {
		return
	}
	from := l.samples[0]
	span := l.stepAt.Sub(from.at)
	if gap := span / time.Duration(steps); now.Sub(l.stepAt) > 2*gap {
		span = now.Sub(from.at) // a stall: count it
	}
	if now.Sub(from.at) < rateWarmup || span <= 0 {
		return
	}
	l.rateBps = max(0, float64(l.done-from.done)/span.Seconds())
	if l.rateBps > 0 {
		l.etaSec = float64(l.size-l.done) / l.rateBps
	}
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
		p = &liveTransfer{size: size, published: now}
		t.moving[k] = p
		started = true
	}
	publish = p.update(done, now)
	return *p, started, publish
}

// get returns a moving transfer's progress, its rate as of now: a
// transfer that stalled shows a rate that falls, not its last one.
func (t *progressTracker) get(k liveKey, now time.Time) (liveTransfer, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.moving[k]
	if !ok {
		return liveTransfer{}, false
	}
	p.measure(now)
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
