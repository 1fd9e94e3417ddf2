// Package linkem emulates a network link in userspace: delay with jitter,
// random and bursty loss, reordering and a rate limit, each way on its
// own. The lab's kernel has no netem ("Specified qdisc kind is unknown"),
// so a Link bridges two network interfaces through AF_PACKET sockets and
// holds every frame for as long as the link it stands for would.
//
// The model, per direction, in the order a frame meets it:
//
//  1. Loss: a frame is dropped with probability Loss, or by a
//     Gilbert–Elliott chain (Burst) that has a good and a bad state, so
//     losses come in runs as on Wi-Fi and mobile links.
//  2. The bottleneck: frames are serialised at Rate one after another,
//     behind a queue of at most Queue of waiting time (tail drop), as a
//     router's buffer would hold them.
//  3. Propagation: each frame then takes Delay plus a uniform Jitter in
//     ±Jitter; frames keep their order (a frame never arrives before the
//     one ahead of it), except that with probability Reorder a frame
//     skips the delay and overtakes the ones in flight, as netem's reorder
//     does.
package linkem

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Shape is what one direction of a link does to frames. The zero value
// passes every frame at once.
type Shape struct {
	Delay   time.Duration // one-way delay
	Jitter  time.Duration // each frame's delay varies uniformly by ±Jitter
	Loss    float64       // probability a frame is dropped at random
	Burst   *Burst        // bursty loss, on top of Loss; nil for none
	Reorder float64       // probability a frame skips the delay
	// Rate is the link's rate in bits per second; 0 is unlimited.
	Rate int64
	// Queue bounds how long a frame may wait for the bottleneck before
	// it is dropped (a router buffer, expressed in time at Rate); zero
	// means DefaultQueue.
	Queue time.Duration
}

// DefaultQueue is the bottleneck buffer when Shape.Queue is unset: 50 ms
// at the link's rate, what tc tbf was given in the lab (latency 50ms) and
// in the range of home routers.
const DefaultQueue = 50 * time.Millisecond

// Burst is a Gilbert–Elliott loss model: in the good state frames are
// lost with probability LossGood, in the bad state with LossBad; after
// each frame the state flips with probability GoodToBad or BadToGood.
// The mean loss is (LossGood·BadToGood + LossBad·GoodToBad) /
// (GoodToBad + BadToGood); the mean burst lasts 1/BadToGood frames.
type Burst struct {
	GoodToBad, BadToGood float64
	LossGood, LossBad    float64
}

// MeanLoss is the long-run share of frames the model drops.
func (b Burst) MeanLoss() float64 {
	if b.GoodToBad+b.BadToGood == 0 {
		return b.LossGood
	}
	return (b.LossGood*b.BadToGood + b.LossBad*b.GoodToBad) / (b.GoodToBad + b.BadToGood)
}

// Validate checks that every value makes sense.
func (s Shape) Validate() error {
	prob := func(name string, p float64) error {
		if p < 0 || p > 1 {
			return fmt.Errorf("%s %v is not a probability", name, p)
		}
		return nil
	}
	switch {
	case s.Delay < 0 || s.Jitter < 0 || s.Queue < 0 || s.Rate < 0:
		return fmt.Errorf("negative delay, jitter, queue or rate")
	case s.Jitter > s.Delay:
		return fmt.Errorf("jitter %s is more than the delay %s", s.Jitter, s.Delay)
	}
	for _, p := range []struct {
		name string
		p    float64
	}{{"loss", s.Loss}, {"reorder", s.Reorder}} {
		if err := prob(p.name, p.p); err != nil {
			return err
		}
	}
	if b := s.Burst; b != nil {
		for _, p := range []float64{b.GoodToBad, b.BadToGood, b.LossGood, b.LossBad} {
			if err := prob("burst", p); err != nil {
				return err
			}
		}
	}
	return nil
}

// shaper applies a Shape to the frames of one direction. It is a pure
// function of the frames' sizes, their arrival times and its random
// source, so tests drive it without sockets.
type shaper struct {
	shape    Shape
	rng      *rand.Rand
	bad      bool      // Gilbert–Elliott state
	busyTill time.Time // when the bottleneck finishes the last frame
	lastOut  time.Time // when the last in-order frame leaves the link
}

func newShaper(s Shape, seed uint64) *shaper {
	return &shaper{shape: s, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// set changes the shape from now on; frames in flight keep their times.
func (sh *shaper) set(s Shape) { sh.shape = s }

// verdict is what becomes of a frame.
type verdict uint8

const (
	pass    verdict = iota // sent on at its time
	lost                   // dropped by Loss or Burst
	overrun                // dropped: the bottleneck's queue was full
)

// admit decides the fate of a frame of size bytes that arrived at now,
// and when it leaves the link if it passes.
func (sh *shaper) admit(size int, now time.Time) (time.Time, verdict) {
	s := sh.shape
	if sh.lost() {
		return time.Time{}, lost
	}
	out := now
	if s.Rate > 0 {
		start := now
		if sh.busyTill.After(now) {
			start = sh.busyTill
		}
		queue := s.Queue
		if queue == 0 {
			queue = DefaultQueue
		}
		if start.Sub(now) > queue {
			return time.Time{}, overrun // the buffer is full: tail drop
		}
		sh.busyTill = start.Add(time.Duration(int64(size) * 8 * int64(time.Second) / s.Rate))
		out = sh.busyTill
	}
	if s.Reorder > 0 && sh.rng.Float64() < s.Reorder {
		return out, pass // skips the delay, overtaking frames in flight
	}
	delay := s.Delay
	if s.Jitter > 0 {
		delay += time.Duration(sh.rng.Int64N(int64(2*s.Jitter)+1)) - s.Jitter
	}
	out = out.Add(delay)
	if out.Before(sh.lastOut) {
		out = sh.lastOut // keep order: no overtaking by jitter alone
	}
	sh.lastOut = out
	return out, pass
}

// lost draws the random and the bursty loss for one frame.
func (sh *shaper) lost() bool {
	s := sh.shape
	drop := s.Loss > 0 && sh.rng.Float64() < s.Loss
	if b := s.Burst; b != nil {
		p := b.LossGood
		if sh.bad {
			p = b.LossBad
		}
		if sh.rng.Float64() < p {
			drop = true
		}
		flip := b.GoodToBad
		if sh.bad {
			flip = b.BadToGood
		}
		if sh.rng.Float64() < flip {
			sh.bad = !sh.bad
		}
	}
	return drop
}
