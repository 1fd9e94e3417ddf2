// Package journaltest checks that a transfer.Journal keeps the contract
// the Receiver relies on. Every implementation runs Run: the in-memory
// one the transfer tests use, and the state database.
package journaltest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/transfer"
)

// Run checks the Journal contract on fresh journals that open returns.
func Run(t *testing.T, open func(t *testing.T) transfer.Journal) {
	tests := []struct {
		name string
		fn   func(t *testing.T, j transfer.Journal)
	}{
		{"a record reads back as started", recordRoundTrip},
		{"chunks read back in index order", chunksInOrder},
		{"a new start drops the old chunks", restartDropsChunks},
		{"finishing keeps the record, not the chunks", finishKeepsRecord},
		{"deleting forgets, twice is no error", deleteForgets},
		{"an unknown transfer is ErrNoRecord", unknownTransfer},
		{"usage counts a peer's records only", usageCounts},
		{"unfinished transfers come oldest first", unfinishedOrder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, open(t)) })
	}
}

// Peers whose IDs start alike: one must never count as the other.
const (
	peer       = "PEERAAAA"
	peerLonger = "PEERAAAAB"
)

func record(id string, size int64, updated time.Time) transfer.Record {
	return transfer.Record{
		ID: id, Peer: peer, Name: "dir/" + id + ".bin", Size: size, ChunkSize: 1 << 20,
		ModTime: updated.Add(-time.Hour), Mode: 0o644, Staging: ".punchdrop/" + id + ".part",
		State: transfer.Receiving, Started: updated, Updated: updated,
	}
}

func mustStart(t *testing.T, j transfer.Journal, recs ...transfer.Record) {
	t.Helper()
	for _, rec := range recs {
		if err := j.StartIncoming(rec); err != nil {
			t.Fatalf("start %s: %v", rec.ID, err)
		}
	}
}

func hash(b byte) []byte { return bytes.Repeat([]byte{b}, transfer.HashLen) }

// chunks returns the indexes recorded for a transfer, checking each
// hash against hash(index).
func chunks(t *testing.T, j transfer.Journal, id string) []uint32 {
	t.Helper()
	var seen []uint32
	err := j.IncomingChunks(peer, id, func(i uint32, h []byte) error {
		if !bytes.Equal(h, hash(byte(i))) {
			t.Errorf("chunk %d has hash %x", i, h)
		}
		seen = append(seen, i)
		return nil
	})
	if err != nil {
		t.Fatalf("chunks of %s: %v", id, err)
	}
	return seen
}

func recordChunks(t *testing.T, j transfer.Journal, id string, indexes ...uint32) {
	t.Helper()
	hashes := make([][]byte, len(indexes))
	for k, i := range indexes {
		hashes[k] = hash(byte(i))
	}
	if err := j.RecordChunks(peer, id, indexes, hashes); err != nil {
		t.Fatalf("record chunks of %s: %v", id, err)
	}
}

func recordRoundTrip(t *testing.T, j transfer.Journal) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	rec := record("aa", 10<<20, now)
	mustStart(t, j, rec)
	got, err := j.IncomingTransfer(peer, "aa")
	if err != nil || !equal(got, rec) {
		t.Fatalf("IncomingTransfer = %+v, %v; want %+v", got, err, rec)
	}
}

// equal compares records, their times as instants.
func equal(a, b transfer.Record) bool {
	times := [][2]time.Time{{a.ModTime, b.ModTime}, {a.Started, b.Started}, {a.Updated, b.Updated}}
	for _, tt := range times {
		if !tt[0].Equal(tt[1]) {
			return false
		}
	}
	a.ModTime, a.Started, a.Updated = b.ModTime, b.Started, b.Updated
	return a == b
}

func chunksInOrder(t *testing.T, j transfer.Journal) {
	before := time.Now().Add(-time.Hour)
	mustStart(t, j, record("aa", 10<<20, before))
	recordChunks(t, j, "aa", 7, 0)
	recordChunks(t, j, "aa", 3)
	if got := chunks(t, j, "aa"); !slices.Equal(got, []uint32{0, 3, 7}) {
		t.Fatalf("chunks %v, want 0, 3, 7", got)
	}
	if rec, _ := j.IncomingTransfer(peer, "aa"); !rec.Updated.After(before) {
		t.Fatalf("recording chunks left Updated at %v", rec.Updated)
	}
	stop := errors.New("enough")
	var seen []uint32
	err := j.IncomingChunks(peer, "aa", func(i uint32, _ []byte) error {
		seen = append(seen, i)
		if i == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !slices.Equal(seen, []uint32{0, 3}) {
		t.Fatalf("IncomingChunks stopped after %v with %v; want 0, 3 and fn's error", seen, err)
	}
}

func restartDropsChunks(t *testing.T, j transfer.Journal) {
	rec := record("aa", 10<<20, time.Now())
	mustStart(t, j, rec)
	recordChunks(t, j, "aa", 1, 2)
	rec.Size = 5 << 20 // a new version of the file
	mustStart(t, j, rec)
	if got := chunks(t, j, "aa"); len(got) != 0 {
		t.Fatalf("a restarted transfer kept chunks %v", got)
	}
	if u, _ := j.IncomingUsage(peer); u != (transfer.Usage{Unfinished: 1, Staged: 5 << 20}) {
		t.Fatalf("usage after a restart %+v, want the new version only", u)
	}
}

func finishKeepsRecord(t *testing.T, j transfer.Journal) {
	mustStart(t, j, record("aa", 100, time.Now()))
	recordChunks(t, j, "aa", 0)
	at := time.Now().Add(time.Minute).UTC()
	if err := j.FinishIncoming(peer, "aa", "dir/aa (1).bin", at); err != nil {
		t.Fatal(err)
	}
	got, err := j.IncomingTransfer(peer, "aa")
	if err != nil || got.State != transfer.Received || got.Final != "dir/aa (1).bin" || !got.Updated.Equal(at) {
		t.Fatalf("finished record %+v, %v", got, err)
	}
	if got := chunks(t, j, "aa"); len(got) != 0 {
		t.Fatalf("a finished transfer kept chunks %v", got)
	}
	if u, _ := j.IncomingUsage(peer); u != (transfer.Usage{Done: 1}) {
		t.Fatalf("usage %+v, want one done", u)
	}
	if open, _ := j.UnfinishedIncoming(peer); len(open) != 0 {
		t.Fatalf("a finished transfer is listed unfinished: %+v", open)
	}
}

func deleteForgets(t *testing.T, j transfer.Journal) {
	mustStart(t, j, record("aa", 100, time.Now()))
	recordChunks(t, j, "aa", 0)
	for range 2 {
		if err := j.DeleteIncoming(peer, "aa"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := j.IncomingTransfer(peer, "aa"); !errors.Is(err, transfer.ErrNoRecord) {
		t.Fatalf("after delete: %v, want ErrNoRecord", err)
	}
	if u, _ := j.IncomingUsage(peer); u != (transfer.Usage{}) {
		t.Fatalf("usage after delete %+v", u)
	}
}

func unknownTransfer(t *testing.T, j transfer.Journal) {
	mustStart(t, j, record("aa", 100, time.Now()))
	checks := map[string]error{
		"IncomingTransfer": func() error { _, err := j.IncomingTransfer(peer, "zz"); return err }(),
		"IncomingChunks":   j.IncomingChunks(peer, "zz", func(uint32, []byte) error { return nil }),
		"RecordChunks":     j.RecordChunks(peer, "zz", []uint32{0}, [][]byte{hash(0)}),
		"FinishIncoming":   j.FinishIncoming(peer, "zz", "x", time.Now()),
		"another peer's":   func() error { _, err := j.IncomingTransfer(peerLonger, "aa"); return err }(),
	}
	for what, err := range checks {
		if !errors.Is(err, transfer.ErrNoRecord) {
			t.Errorf("%s of an unknown transfer: %v, want ErrNoRecord", what, err)
		}
	}
}

func usageCounts(t *testing.T, j transfer.Journal) {
	now := time.Now()
	other := record("x", 1<<30, now)
	other.Peer = peerLonger
	mustStart(t, j, record("a", 100, now), record("b", 200, now), record("c", 50, now), other)
	if err := j.FinishIncoming(peer, "c", "c", now); err != nil {
		t.Fatal(err)
	}
	if u, err := j.IncomingUsage(peer); err != nil || u != (transfer.Usage{Unfinished: 2, Staged: 300, Done: 1}) {
		t.Fatalf("usage %+v, %v; want 2 unfinished (300 bytes), one done", u, err)
	}
	if u, err := j.IncomingUsage("nobody"); err != nil || u != (transfer.Usage{}) {
		t.Fatalf("usage of an unknown peer %+v, %v", u, err)
	}
}

func unfinishedOrder(t *testing.T, j transfer.Journal) {
	now := time.Now()
	other := record("x", 1, now.Add(-3*time.Hour))
	other.Peer = peerLonger
	mustStart(t, j, record("b", 1, now), record("a", 1, now.Add(-time.Hour)), record("c", 1, now.Add(-2*time.Hour)), other)
	if err := j.FinishIncoming(peer, "c", "c", now); err != nil {
		t.Fatal(err)
	}
	ids := func(peer string) []string {
		recs, err := j.UnfinishedIncoming(peer)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range recs {
			out = append(out, r.ID)
		}
		return out
	}
	if got := ids(peer); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("unfinished of %s: %v, want a, b", peer, got)
	}
	if got := ids(""); !slices.Equal(got, []string{"x", "a", "b"}) {
		t.Fatalf("unfinished of every peer: %v, want x, a, b", got)
	}
}
