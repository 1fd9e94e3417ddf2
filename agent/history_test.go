package agent

import (
	"bytes"
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/store"
	"github.com/punchdrop/punchdrop/testutil"
)

// TestHistoryIsPruned: finished transfers older than history_days are
// forgotten when the agent starts, and again when a reload shortens
// history_days; queued ones and recent ones stay.
func TestHistoryIsPruned(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	home := t.TempDir()
	paths := ResolvePaths(home)
	now := time.Now().UTC()
	day := 24 * time.Hour
	withState(t, paths.State, func(s *store.Store) {
		err := s.AddOutgoing(
			store.Outgoing{ID: "40-days", Peer: "P", State: store.OutgoingDone, Updated: now.Add(-40 * day)},
			store.Outgoing{ID: "10-days", Peer: "P", State: store.OutgoingFailed, Updated: now.Add(-10 * day)},
			store.Outgoing{ID: "an-hour", Peer: "P", State: store.OutgoingDone, Updated: now.Add(-time.Hour)},
			store.Outgoing{ID: "queued", Peer: "P", State: store.OutgoingQueued, Queued: now.Add(-90 * day)},
		)
		if err != nil {
			t.Fatal(err)
		}
	})
	logged := func(times int) func() bool {
		return func() bool {
			b, _ := os.ReadFile(paths.Log)
			return bytes.Count(b, []byte("forgot finished transfers older than history_days")) == times
		}
	}
	c, stop := startAgent(t, "alice", home)
	testutil.Until(t, ctx, "the prune at start", logged(1))
	reloadWith(t, ctx, c, home, "history_days", "5")
	testutil.Until(t, ctx, "the prune after the reload", logged(2))
	stop()
	withState(t, paths.State, func(s *store.Store) {
		a, err := s.Activity(time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, o := range slices.Concat(a.Queued, a.Ended) {
			left = append(left, o.ID)
		}
		slices.Sort(left)
		if !slices.Equal(left, []string{"an-hour", "queued"}) {
			t.Fatalf("left %v, want queued and an-hour", left)
		}
	})
}

// withState runs fn on the state database at path, while no agent runs.
func withState(t *testing.T, path string, fn func(*store.Store)) {
	t.Helper()
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fn(s)
}
