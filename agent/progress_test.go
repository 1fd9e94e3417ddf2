package agent

import (
	"testing"
	"time"
)

func TestLiveTransferRate(t *testing.T) {
	start := time.Now()
	l := &liveTransfer{size: 100 << 20, published: start}
	// A resumed transfer starts with 50 MiB held: that is not speed.
	if l.update(50<<20, start.Add(10*time.Millisecond)) {
		t.Fatal("published sooner than progressInterval")
	}
	if !l.update(51<<20, start.Add(1010*time.Millisecond)) {
		t.Fatal("not published after a second")
	}
	if l.rateBps != 0 || l.etaSec != 0 {
		t.Fatalf("rate %v B/s, eta %v s within rateWarmup; want both unknown (0)", l.rateBps, l.etaSec)
	}
	l.update(60<<20, start.Add(10*time.Millisecond+5*time.Second))
	if l.rateBps != 2<<20 || l.etaSec != 20 {
		t.Fatalf("rate %v B/s, eta %v s; want 2 MiB/s, 20 s", l.rateBps, l.etaSec)
	}
	if !l.update(100<<20, start.Add(5100*time.Millisecond)) {
		t.Fatal("completion must always be published")
	}
}

// On a lossy path the receiver's count moves in bursts: here four 1 MiB
// chunks at once every four seconds (lanes finishing together, then
// resends), 1 MiB/s on average. Once the window is full, the shown rate
// stays near that average and the ETA counts down steadily, rather than
// jumping with each burst and each silence.
func TestLiveTransferRateHoldsUnderBursts(t *testing.T) {
	start := time.Now()
	const size = 200 << 20
	l := &liveTransfer{size: size, published: start}
	var done int64
	prevETA := 0.0
	for ms := 0; ms <= 60_000; ms += 250 {
		now := start.Add(time.Duration(ms) * time.Millisecond)
		if ms > 0 && ms%4000 == 0 {
			done += 4 << 20
		}
		l.update(done, now)
		if ms < 12_000 {
			continue
		}
		if rate := l.rateBps / (1 << 20); rate < 0.75 || rate > 1.25 {
			t.Fatalf("at %d ms the rate is %.2f MiB/s; want within 25 %% of 1 MiB/s", ms, rate)
		}
		// Seconds pass one for one; a burst may shift the estimate by
		// the burst's share of the window, no more.
		if prevETA > 0 && (l.etaSec > prevETA+0.25*prevETA || l.etaSec < prevETA-0.25*prevETA) {
			t.Fatalf("at %d ms the ETA jumped from %.0f s to %.0f s", ms, prevETA, l.etaSec)
		}
		prevETA = l.etaSec
	}
}

// A transfer that stops moving shows its rate falling as the window
// slides over the stall, down to unknown, rather than its last rate and
// an ETA that never moves.
func TestLiveTransferRateFallsWhenStalled(t *testing.T) {
	tr := newProgressTracker()
	k := liveKey{outgoing, "BOB", "0123"}
	start := time.Now()
	for s := 0; s <= 10; s++ {
		tr.report(k, 100<<20, int64(s)<<20, start.Add(time.Duration(s)*time.Second))
	}
	moving, _ := tr.get(k, start.Add(10*time.Second))
	half, _ := tr.get(k, start.Add(15*time.Second))
	stalled, _ := tr.get(k, start.Add(30*time.Second))
	if moving.rateBps != 1<<20 {
		t.Fatalf("moving at %v B/s, want 1 MiB/s", moving.rateBps)
	}
	if half.rateBps >= moving.rateBps || half.rateBps <= 0 {
		t.Fatalf("5 s into a stall the rate is %v B/s; want below %v and above 0", half.rateBps, moving.rateBps)
	}
	if stalled.rateBps != 0 || stalled.etaSec != 0 {
		t.Fatalf("20 s into a stall: rate %v B/s, eta %v s; want both unknown (0)", stalled.rateBps, stalled.etaSec)
	}
}

// A peer picks the IDs of the files it sends us; one that reuses the ID
// of a file we send it must not mix the two files' progress.
func TestProgressKeepsDirectionsApart(t *testing.T) {
	tr := newProgressTracker()
	now := time.Now()
	mine, theirs := liveKey{outgoing, "BOB", "0123"}, liveKey{incoming, "BOB", "0123"}
	tr.report(mine, 100, 0, now)
	tr.report(theirs, 1000, 500, now)
	tr.report(mine, 100, 10, now.Add(time.Second))
	out, okOut := tr.get(mine, now)
	in, okIn := tr.get(theirs, now)
	if len(tr.moving) != 2 || !okOut || !okIn {
		t.Fatalf("%d live transfers, want ours and theirs apart", len(tr.moving))
	}
	if out.size != 100 || out.done != 10 || in.size != 1000 || in.done != 500 {
		t.Fatalf("ours %+v, theirs %+v", out, in)
	}
	if _, ok := tr.stop(mine); !ok {
		t.Fatal("ours was not moving")
	}
	if _, ok := tr.get(theirs, now); !ok {
		t.Fatal("stopping ours stopped theirs")
	}
}
