package agent

import (
	"testing"
	"time"
)

func TestLiveTransferRate(t *testing.T) {
	start := time.Now()
	l := &liveTransfer{size: 100 << 20, lastTime: start, published: start}
	// A resumed transfer starts with 50 MiB held: that is not speed.
	if l.update(50<<20, start.Add(10*time.Millisecond)) {
		t.Fatal("published sooner than progressInterval")
	}
	if !l.update(60<<20, start.Add(1010*time.Millisecond)) {
		t.Fatal("not published after a second")
	}
	if l.rateBps != 10<<20 || l.etaSec != 4 {
		t.Fatalf("rate %v B/s, eta %v s; want 10 MiB/s, 4 s", l.rateBps, l.etaSec)
	}
	if !l.update(100<<20, start.Add(1100*time.Millisecond)) {
		t.Fatal("completion must always be published")
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
	out, okOut := tr.get(mine)
	in, okIn := tr.get(theirs)
	if len(tr.moving) != 2 || !okOut || !okIn {
		t.Fatalf("%d live transfers, want ours and theirs apart", len(tr.moving))
	}
	if out.size != 100 || out.done != 10 || in.size != 1000 || in.done != 500 {
		t.Fatalf("ours %+v, theirs %+v", out, in)
	}
	if _, ok := tr.stop(mine); !ok {
		t.Fatal("ours was not moving")
	}
	if _, ok := tr.get(theirs); !ok {
		t.Fatal("stopping ours stopped theirs")
	}
}
