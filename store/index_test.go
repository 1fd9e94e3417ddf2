package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/punchdrop/punchdrop/transfer"
)

func ids[T any](items []T, id func(T) string) []string {
	out := []string{}
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}

func outIDs(out []Outgoing) []string { return ids(out, func(o Outgoing) string { return o.ID }) }

func inIDs(in []transfer.Record) []string {
	return ids(in, func(r transfer.Record) string { return r.ID })
}

// TestQueueIndexFollowsState: a peer's queue holds its queued transfers
// only, oldest first, and a transfer leaves it and comes back with its
// state.
func TestQueueIndexFollowsState(t *testing.T) {
	s, _ := openTemp(t)
	now := time.Now().UTC()
	out := []Outgoing{
		{ID: "new", Peer: "P", State: OutgoingQueued, Queued: now},
		{ID: "old", Peer: "P", State: OutgoingQueued, Queued: now.Add(-time.Hour)},
		{ID: "same-b", Peer: "P", State: OutgoingQueued, Queued: now.Add(-time.Minute)},
		{ID: "same-a", Peer: "P", State: OutgoingQueued, Queued: now.Add(-time.Minute)},
		{ID: "sent", Peer: "P", State: OutgoingDone, Queued: now.Add(-2 * time.Hour), Updated: now},
		{ID: "other", Peer: "PQ", State: OutgoingQueued, Queued: now}, // a peer whose ID starts alike
		{ID: "another", Peer: "O", State: OutgoingQueued, Queued: now},
	}
	if err := s.AddOutgoing(out...); err != nil {
		t.Fatal(err)
	}
	pending := func(peer string) []string {
		t.Helper()
		got, err := s.PendingOutgoing(peer)
		if err != nil {
			t.Fatal(err)
		}
		return outIDs(got)
	}
	if got, want := pending("P"), []string{"old", "same-a", "same-b", "new"}; !slices.Equal(got, want) {
		t.Fatalf("queue of P %v, want %v", got, want)
	}
	if got, err := s.QueuedPeers(); err != nil || !slices.Equal(got, []string{"O", "P", "PQ"}) {
		t.Fatalf("QueuedPeers = %v, %v", got, err)
	}
	steps := []struct {
		id    string
		state OutgoingState
		want  []string
	}{
		{"old", OutgoingDone, []string{"same-a", "same-b", "new"}},
		{"same-a", OutgoingFailed, []string{"same-b", "new"}},
		{"sent", OutgoingQueued, []string{"sent", "same-b", "new"}}, // sent again: oldest of all
		{"new", OutgoingQueued, []string{"sent", "same-b", "new"}},  // no change
	}
	for _, st := range steps {
		if err := s.UpdateOutgoing(st.id, func(o *Outgoing) { o.State, o.Updated = st.state, time.Now() }); err != nil {
			t.Fatal(err)
		}
		if got := pending("P"); !slices.Equal(got, st.want) {
			t.Fatalf("after %s became %s: queue %v, want %v", st.id, st.state, got, st.want)
		}
	}
	if got := pending("nobody"); len(got) != 0 {
		t.Fatalf("queue of an unknown peer %v", got)
	}
}

// TestActivityReadsTheRecentOnly: Activity lists what is not finished
// and what finished since the time asked for, in both directions.
func TestActivityReadsTheRecentOnly(t *testing.T) {
	s, _ := openTemp(t)
	now := time.Now().UTC()
	day := 24 * time.Hour
	err := s.AddOutgoing(
		Outgoing{ID: "q", Peer: "P", State: OutgoingQueued, Queued: now.Add(-40 * day), Updated: now.Add(-40 * day)},
		Outgoing{ID: "done-old", Peer: "P", State: OutgoingDone, Updated: now.Add(-2 * day)},
		Outgoing{ID: "done-new", Peer: "P", State: OutgoingDone, Updated: now.Add(-time.Hour)},
		Outgoing{ID: "failed-new", Peer: "P", State: OutgoingFailed, Updated: now.Add(-2 * time.Hour)},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []transfer.Record{
		{ID: "open-old", Peer: "P", State: transfer.Receiving, Updated: now.Add(-40 * day)},
		{ID: "in-old", Peer: "P", State: transfer.Receiving},
		{ID: "in-new", Peer: "P", State: transfer.Receiving},
	} {
		if err := s.StartIncoming(r); err != nil {
			t.Fatal(err)
		}
	}
	s.FinishIncoming("P", "in-old", "a", now.Add(-2*day))
	s.FinishIncoming("P", "in-new", "b", now.Add(-time.Minute))

	a, err := s.Activity(now.Add(-day))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what      string
		got, want []string
	}{
		{"queued", outIDs(a.Queued), []string{"q"}},
		{"ended", outIDs(a.Ended), []string{"failed-new", "done-new"}},
		{"receiving", inIDs(a.Receiving), []string{"open-old"}},
		{"received", inIDs(a.Received), []string{"in-new"}},
	} {
		if !slices.Equal(c.got, c.want) {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestPruneHistory: finished transfers older than the cutoff go, in
// batches, with their usage; what is not finished, what an outbox entry
// still waits on, and what is newer stay.
func TestPruneHistory(t *testing.T) {
	s, _ := openTemp(t)
	now := time.Now().UTC()
	old, cutoff := now.Add(-48*time.Hour), now.Add(-24*time.Hour)
	var out []Outgoing
	for i := range 2*pruneBatch + 10 {
		out = append(out, Outgoing{ID: fmt.Sprintf("old-%05d", i), Peer: "P", State: []OutgoingState{OutgoingDone, OutgoingFailed}[i%2], Updated: old})
	}
	out = append(out,
		Outgoing{ID: "recent", Peer: "P", State: OutgoingDone, Updated: now},
		Outgoing{ID: "queued", Peer: "P", State: OutgoingQueued, Queued: old, Updated: old},
	)
	if err := s.AddOutgoing(out...); err != nil {
		t.Fatal(err)
	}
	// An entry still waiting for one peer keeps the transfer another has
	// had long since; a kept entry does not.
	drops := []OutboxDrop{
		{OutboxEntry{Key: "waits", State: OutboxQueued}, []Outgoing{
			{ID: "waits-done", Peer: "P", State: OutgoingDone, Updated: old},
			{ID: "waits-queued", Peer: "Q", State: OutgoingQueued, Queued: old},
		}},
		{OutboxEntry{Key: "kept", State: OutboxQueued}, []Outgoing{{ID: "kept-done", Peer: "P", State: OutgoingDone, Updated: old}}},
	}
	if _, err := s.QueueOutbox(drops...); err != nil {
		t.Fatal(err)
	}
	if err := s.SettleOutbox(nil, []string{"kept"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []transfer.Record{
		{ID: "in-old", Peer: "P", State: transfer.Receiving},
		{ID: "in-new", Peer: "P", State: transfer.Receiving},
		{ID: "in-open", Peer: "P", State: transfer.Receiving, Updated: old},
	} {
		if err := s.StartIncoming(r); err != nil {
			t.Fatal(err)
		}
	}
	s.FinishIncoming("P", "in-old", "a", old)
	s.FinishIncoming("P", "in-new", "b", now)

	n, err := s.PruneHistory(t.Context(), cutoff)
	if err != nil || n != 2*pruneBatch+10+2 {
		t.Fatalf("PruneHistory = %d, %v; want %d forgotten", n, err, 2*pruneBatch+10+2)
	}
	if got, want := outIDs(allOutgoing(t, s)), []string{"queued", "recent", "waits-done", "waits-queued"}; !slices.Equal(got, want) {
		t.Fatalf("outgoing left %v, want %v", got, want)
	}
	if _, err := s.IncomingTransfer("P", "in-old"); err == nil {
		t.Fatal("an old received transfer stayed")
	}
	if u := usageOf(t, s, "P"); u != (transfer.Usage{Unfinished: 1, Done: 1}) {
		t.Fatalf("usage after pruning %+v, want the open one and the new received one", u)
	}
	if n, err := s.PruneHistory(t.Context(), cutoff); err != nil || n != 0 {
		t.Fatalf("a second PruneHistory = %d, %v; want nothing", n, err)
	}
	a, err := s.Activity(time.Time{})
	if err != nil || !slices.Equal(outIDs(a.Ended), []string{"waits-done", "recent"}) || !slices.Equal(inIDs(a.Received), []string{"in-new"}) {
		t.Fatalf("the indexes after pruning: %+v, %v", a, err)
	}
}

// TestUpgradeFromSchema3: a file in the layout of schema 3 (no indexes)
// opens with its transfers indexed, and so does one whose upgrade was
// cut off half way (index buckets with stale entries, schema still 3).
func TestUpgradeFromSchema3(t *testing.T) {
	for _, tt := range []struct {
		name     string
		leftover bool
	}{{"untouched", false}, {"upgrade cut off", true}} {
		t.Run(tt.name, func(t *testing.T) {
			path := writeSchema3(t, tt.leftover)
			s, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got, err := s.PendingOutgoing("P"); err != nil || !slices.Equal(outIDs(got), []string{"q-old", "q-new"}) {
				t.Fatalf("queue after the upgrade %v, %v", outIDs(got), err)
			}
			a, err := s.Activity(time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(outIDs(a.Ended), []string{"failed", "done"}) || !slices.Equal(inIDs(a.Receiving), []string{"open"}) || !slices.Equal(inIDs(a.Received), []string{"received"}) {
				t.Fatalf("activity after the upgrade: ended %v, receiving %v, received %v", outIDs(a.Ended), inIDs(a.Receiving), inIDs(a.Received))
			}
			if u := usageOf(t, s, "P"); u != (transfer.Usage{Unfinished: 1, Staged: 10, Done: 1}) {
				t.Fatalf("usage after the upgrade %+v", u)
			}
			s.db.View(func(tx *bolt.Tx) error {
				if v := binary.BigEndian.Uint64(tx.Bucket(bucketMeta).Get(keySchema)); v != SchemaVersion {
					t.Errorf("schema %d after the upgrade", v)
				}
				return nil
			})
		})
	}
}

// writeSchema3 writes a state file as schema 3 did, byte for byte in its
// layout: records only, no indexes. With leftover, it also holds index
// buckets with a stale entry, as an upgrade cut off half way leaves.
func writeSchema3(t *testing.T, leftover bool) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := bolt.Open(path, fileMode, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Now().UTC()
	put := func(b *bolt.Bucket, key string, v any) {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Put([]byte(key), data); err != nil {
			t.Fatal(err)
		}
	}
	err = db.Update(func(tx *bolt.Tx) error {
		buckets := map[string]*bolt.Bucket{}
		for _, name := range []string{"meta", "peers", "requests", "messages", "outgoing", "incoming", "outbox"} {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			buckets[name] = b
		}
		buckets["meta"].Put([]byte("schema"), binary.BigEndian.AppendUint64(nil, 3))
		for _, o := range []map[string]any{
			{"id": "q-new", "peer": "P", "state": "queued", "queued": now},
			{"id": "q-old", "peer": "P", "state": "queued", "queued": now.Add(-time.Hour)},
			{"id": "done", "peer": "P", "state": "done", "updated": now},
			{"id": "failed", "peer": "P", "state": "failed", "updated": now.Add(-time.Minute)},
		} {
			put(buckets["outgoing"], o["id"].(string), o)
		}
		for _, in := range []map[string]any{
			{"id": "open", "peer": "P", "size": 10, "state": "receiving", "updated": now},
			{"id": "received", "peer": "P", "size": 20, "state": "done", "updated": now},
		} {
			b, err := buckets["incoming"].CreateBucket([]byte("P/" + in["id"].(string)))
			if err != nil {
				return err
			}
			put(b, "meta", in)
			if in["state"] == "receiving" {
				chunks, _ := b.CreateBucket([]byte("chunks"))
				chunks.Put([]byte{0, 0, 0, 0}, make([]byte, 32))
			}
		}
		if leftover {
			b, err := tx.CreateBucket(bucketOutgoingEnded)
			if err != nil {
				return err
			}
			return b.Put(append(timeKey(now), "gone"...), present)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// TestStrayIndexEntries: index entries that name no record (only damage
// makes them) are skipped by the readers and dropped by a prune.
func TestStrayIndexEntries(t *testing.T) {
	s, _ := openTemp(t)
	old := time.Now().Add(-48 * time.Hour)
	stray := []indexEntry{
		outgoingEntry(Outgoing{ID: "gone-queued", Peer: "P", State: OutgoingQueued}),
		outgoingEntry(Outgoing{ID: "gone-done", State: OutgoingDone, Updated: old}),
		incomingEntry(transfer.Record{ID: "gone-open", Peer: "P", State: transfer.Receiving}),
		incomingEntry(transfer.Record{ID: "gone-received", Peer: "P", State: transfer.Received, Updated: old}),
	}
	s.db.Update(func(tx *bolt.Tx) error {
		for _, e := range stray {
			if err := e.put(tx); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	})
	if q, err := s.PendingOutgoing("P"); err != nil || len(q) != 0 {
		t.Fatalf("PendingOutgoing = %+v, %v", q, err)
	}
	if a, err := s.Activity(time.Time{}); err != nil || len(a.Queued)+len(a.Ended)+len(a.Receiving)+len(a.Received) != 0 {
		t.Fatalf("Activity = %+v, %v", a, err)
	}
	if n, err := s.PruneHistory(t.Context(), time.Now()); err != nil || n != 2 {
		t.Fatalf("PruneHistory = %d, %v; want the two stray ended entries dropped", n, err)
	}
}
