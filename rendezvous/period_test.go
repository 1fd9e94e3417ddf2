package rendezvous

import (
	"testing"
	"time"
)

func TestPeriodOf(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want Period
	}{
		{time.Unix(0, 0), 0},
		{time.Unix(86399, 999999999), 0},
		{time.Unix(86400, 0), 1},
		{time.Unix(-1, 0), -1},
		{time.Unix(-86400, 0), -1},
		{time.Unix(-86401, 0), -2},
		{time.Date(2026, 5, 25, 0, 0, 0, 0, time.UTC), 20598},
		{time.Date(2026, 5, 25, 23, 59, 59, 0, time.UTC), 20598},
		// A local zone does not move the period: it is UTC's day.
		{time.Date(2026, 5, 25, 1, 0, 0, 0, time.FixedZone("CEST", 2*3600)), 20597},
	} {
		if got := PeriodOf(tc.t); got != tc.want {
			t.Errorf("PeriodOf(%v) = %d, want %d", tc.t, got, tc.want)
		}
		if start := tc.want.Start(); PeriodOf(start) != tc.want || tc.t.Before(start) || !tc.t.Before(start.Add(periodLength)) {
			t.Errorf("period %d starts at %v, which does not hold %v", tc.want, start, tc.t)
		}
	}
}

func TestLookupPeriods(t *testing.T) {
	day := time.Date(2026, 5, 25, 0, 0, 0, 0, time.UTC)
	p := PeriodOf(day)
	for _, tc := range []struct {
		name string
		t    time.Time
		want [2]Period
	}{
		{"just after midnight", day.Add(time.Minute), [2]Period{p, p - 1}},
		{"morning", day.Add(11 * time.Hour), [2]Period{p, p - 1}},
		{"noon", day.Add(12 * time.Hour), [2]Period{p, p + 1}},
		{"just before midnight", day.Add(24*time.Hour - time.Second), [2]Period{p, p + 1}},
	} {
		if got := LookupPeriods(tc.t); got != tc.want {
			t.Errorf("%s: LookupPeriods = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestNextSeq(t *testing.T) {
	now := time.Unix(1_780_000_000, 0)
	for _, tc := range []struct {
		name string
		prev int64
		want int64
	}{
		{"first record", 0, now.Unix()},
		{"an hour after the last", now.Unix() - 3600, now.Unix()},
		{"twice in one second", now.Unix(), now.Unix() + 1},
		{"clock stepped back", now.Unix() + 500, now.Unix() + 501},
	} {
		if got := NextSeq(tc.prev, now); got != tc.want {
			t.Errorf("%s: NextSeq(%d) = %d, want %d", tc.name, tc.prev, got, tc.want)
		}
	}
}

func TestLookupBackoff(t *testing.T) {
	for failures, want := range map[int]time.Duration{
		0: LookupBackoffMin, 1: LookupBackoffMin, 2: 30 * time.Second, 3: time.Minute,
		4: 2 * time.Minute, 5: 4 * time.Minute, 6: 8 * time.Minute, 7: LookupBackoffMax, 1000: LookupBackoffMax,
	} {
		if got := LookupBackoff(failures); got != want {
			t.Errorf("LookupBackoff(%d) = %v, want %v", failures, got, want)
		}
	}
}
