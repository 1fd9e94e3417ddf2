package linkem

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Unix(1000, 0)

func TestShaperDelayAndRate(t *testing.T) {
	sh := newShaper(Shape{Delay: 25 * time.Millisecond, Rate: 12_000_000}, 1) // 1500 B take 1 ms
	for i := range 10 {
		at, v := sh.admit(1500, t0)
		if want := t0.Add(time.Duration(i+1)*time.Millisecond + 25*time.Millisecond); v != pass || !at.Equal(want) {
			t.Fatalf("frame %d: %v at %s, want %s", i, v, at.Sub(t0), want.Sub(t0))
		}
	}
	if at, v := newShaper(Shape{}, 1).admit(1500, t0); v != pass || !at.Equal(t0) {
		t.Fatalf("the zero shape holds a frame until %s", at.Sub(t0))
	}
}

// A full bottleneck drops at the tail: with 10 ms of queue, frames that
// would wait longer are dropped.
func TestShaperQueueLimit(t *testing.T) {
	sh := newShaper(Shape{Rate: 1_000_000, Queue: 10 * time.Millisecond}, 1) // 1250 B take 10 ms
	var got []verdict
	for range 4 {
		_, v := sh.admit(1250, t0)
		got = append(got, v)
	}
	if want := []verdict{pass, pass, overrun, overrun}; !equal(got, want) {
		t.Fatalf("verdicts %v, want %v", got, want)
	}
	if _, v := sh.admit(1250, t0.Add(15*time.Millisecond)); v != pass {
		t.Fatal("a frame after the queue drained was dropped")
	}
}

func equal(a, b []verdict) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Jitter varies each frame's delay within ±Jitter but never reorders;
// Reorder lets some frames overtake.
func TestShaperJitterAndReorder(t *testing.T) {
	const d, j = 50 * time.Millisecond, 10 * time.Millisecond
	sh := newShaper(Shape{Delay: d, Jitter: j}, 7)
	var last time.Time
	lo, hi := time.Hour, time.Duration(0)
	for i := range 10000 {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		at, _ := sh.admit(100, now)
		if at.Before(last) {
			t.Fatalf("frame %d overtook the one before it", i)
		}
		last = at
		lo, hi = min(lo, at.Sub(now)), max(hi, at.Sub(now))
	}
	if lo < d-j || hi > d+j || hi-lo < j {
		t.Fatalf("delays from %s to %s, want them spread over %s±%s", lo, hi, d, j)
	}
	sh = newShaper(Shape{Delay: d, Reorder: 0.1}, 7)
	overtakes := 0
	last = time.Time{}
	for i := range 10000 {
		at, _ := sh.admit(100, t0.Add(time.Duration(i)*time.Millisecond))
		if at.Before(last) {
			overtakes++
		}
		last = at
	}
	if overtakes < 800 || overtakes > 1200 {
		t.Fatalf("%d of 10000 frames overtook, want about 1000", overtakes)
	}
}

// Random and bursty loss drop the share asked for, and bursty losses
// come in runs.
func TestShaperLoss(t *testing.T) {
	const n = 200000
	b := &Burst{GoodToBad: 0.002, BadToGood: 0.2, LossGood: 0, LossBad: 0.5}
	for _, tt := range []struct {
		name   string
		shape  Shape
		want   float64
		minRun float64 // mean length of loss runs at least
	}{
		{"random 1%", Shape{Loss: 0.01}, 0.01, 1},
		{"random 0.5%", Shape{Loss: 0.005}, 0.005, 1},
		{"bursty", Shape{Burst: b}, b.MeanLoss(), 1.5},
	} {
		sh := newShaper(tt.shape, 3)
		drops, runs, inRun := 0, 0, false
		for i := range n {
			_, v := sh.admit(100, t0.Add(time.Duration(i)))
			if v == lost {
				drops++
				if !inRun {
					runs++
				}
			}
			inRun = v == lost
		}
		got := float64(drops) / n
		if math.Abs(got-tt.want) > 0.1*tt.want {
			t.Errorf("%s: lost %.4f, want %.4f ± 10%%", tt.name, got, tt.want)
		}
		if mean := float64(drops) / float64(runs); mean < tt.minRun {
			t.Errorf("%s: loss runs of %.2f frames on average, want at least %.1f", tt.name, mean, tt.minRun)
		}
	}
}

func TestShapeValidate(t *testing.T) {
	for _, s := range []Shape{
		{Loss: 1.5}, {Reorder: -0.1}, {Delay: -1}, {Jitter: time.Second, Delay: time.Millisecond},
		{Burst: &Burst{GoodToBad: 2}},
	} {
		if s.Validate() == nil {
			t.Errorf("%+v passed validation", s)
		}
	}
	if err := (Shape{Delay: time.Second, Jitter: time.Millisecond, Loss: 0.01, Rate: 1e8}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestParseShape(t *testing.T) {
	got, err := ParseShape("delay=25ms jitter=2ms loss=0.5% burst=0.2%/20%/50% reorder=0.01 rate=100mbit queue=40ms")
	want := Shape{Delay: 25 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.005, Reorder: 0.01, Rate: 100_000_000, Queue: 40 * time.Millisecond,
		Burst: &Burst{GoodToBad: 0.002, BadToGood: 0.2, LossBad: 0.5}}
	if err != nil || got.Delay != want.Delay || got.Jitter != want.Jitter || got.Loss != want.Loss || got.Reorder != want.Reorder ||
		got.Rate != want.Rate || got.Queue != want.Queue || *got.Burst != *want.Burst {
		t.Fatalf("ParseShape = %+v, %v", got, err)
	}
	if s, err := ParseShape(""); err != nil || s != (Shape{}) {
		t.Fatalf("empty shape: %+v, %v", s, err)
	}
	for _, bad := range []string{"delay", "delay=fast", "loss=150%", "color=red", "burst=1%/2%", "jitter=10ms delay=1ms"} {
		if _, err := ParseShape(bad); err == nil {
			t.Errorf("ParseShape(%q) passed", bad)
		}
	}
}
