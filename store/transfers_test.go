package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/punchdrop/punchdrop/transfer"
)

func TestOutgoingQueue(t *testing.T) {
	s, _ := openTemp(t)
	now := time.Now().UTC().Truncate(time.Second)
	a := Outgoing{ID: "01", Peer: "P", Path: "/x/a.txt", Name: "a.txt", Size: 3, State: OutgoingQueued, Queued: now}
	b := Outgoing{ID: "02", Peer: "P", Path: "/x/d/b.txt", Name: "d/b.txt", Size: 5, State: OutgoingQueued, Queued: now}
	if err := s.AddOutgoing(a, b); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateOutgoing("02", func(o *Outgoing) { o.State, o.Final = OutgoingDone, "d/b (1).txt" }); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateOutgoing("03", func(*Outgoing) {}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing transfer = %v, want ErrNotFound", err)
	}
	got := allOutgoing(t, s)
	if len(got) != 2 || got[0] != a || got[1].State != OutgoingDone || got[1].Final != "d/b (1).txt" {
		t.Fatalf("outgoing transfers %+v", got)
	}
}

func TestIncomingChunksSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	in := transfer.Record{ID: "aa", Peer: "P", Name: "v.mkv", Size: 10 << 20, ChunkSize: 1 << 20, Staging: ".punchdrop/aa.part", State: transfer.Receiving}
	if err := s.StartIncoming(in); err != nil {
		t.Fatal(err)
	}
	h := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	if err := s.RecordChunks("P", "aa", []uint32{0, 7, 3}, [][]byte{h(0), h(7), h(3)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var seen []uint32
	chunks := func(i uint32, hash []byte) error {
		if !bytes.Equal(hash, h(byte(i))) {
			t.Errorf("chunk %d hash %x", i, hash)
		}
		seen = append(seen, i)
		return nil
	}
	got, err := s.IncomingTransfer("P", "aa")
	if err == nil {
		err = s.IncomingChunks("P", "aa", chunks)
	}
	if err != nil || got.Name != "v.mkv" || len(seen) != 3 || seen[0] != 0 || seen[1] != 3 || seen[2] != 7 {
		t.Fatalf("IncomingTransfer = %+v, chunks %v, %v", got, seen, err)
	}

	// Starting the same transfer again (a new version) drops its chunks.
	if err := s.StartIncoming(in); err != nil {
		t.Fatal(err)
	}
	seen = nil
	s.IncomingChunks("P", "aa", chunks)
	if len(seen) != 0 {
		t.Fatalf("restarted transfer kept chunks %v", seen)
	}

	// Done keeps the record (a repeated offer is answered from it) but
	// not the chunk list.
	s.RecordChunks("P", "aa", []uint32{1}, [][]byte{h(1)})
	if err := s.FinishIncoming("P", "aa", "v (1).mkv", time.Now()); err != nil {
		t.Fatal(err)
	}
	seen = nil
	got, err = s.IncomingTransfer("P", "aa")
	if err == nil {
		err = s.IncomingChunks("P", "aa", chunks)
	}
	if err != nil || got.State != transfer.Received || got.Final != "v (1).mkv" || len(seen) != 0 {
		t.Fatalf("done transfer = %+v, chunks %v, %v", got, seen, err)
	}
	if a, err := s.Activity(time.Time{}); err != nil || len(a.Received) != 1 || len(a.Receiving) != 0 {
		t.Fatalf("Activity = %+v, %v; want the one received", a, err)
	}
	if err := s.DeleteIncoming("P", "aa"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIncoming("P", "aa"); err != nil {
		t.Fatalf("deleting twice = %v", err)
	}
	if _, err := s.IncomingTransfer("P", "aa"); !errors.Is(err, transfer.ErrNoRecord) {
		t.Fatalf("after delete: %v, want ErrNoRecord", err)
	}
	if err := s.RecordChunks("P", "aa", []uint32{1}, [][]byte{h(1)}); !errors.Is(err, transfer.ErrNoRecord) {
		t.Fatalf("RecordChunks without a record = %v, want ErrNoRecord", err)
	}
}

func TestSchemaUpgradeAndRefusal(t *testing.T) {
	tests := []struct {
		name    string
		version uint64
		want    error
	}{
		{"version 1 upgrades in place", 1, nil},
		{"newer file is refused", SchemaVersion + 1, ErrNewerSchema},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			db, err := bolt.Open(path, fileMode, nil)
			if err != nil {
				t.Fatal(err)
			}
			db.Update(func(tx *bolt.Tx) error {
				b, _ := tx.CreateBucket(bucketMeta)
				return b.Put(keySchema, binary.BigEndian.AppendUint64(nil, tt.version))
			})
			db.Close()
			s, err := Open(path)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Open = %v, want %v", err, tt.want)
			}
			if err == nil {
				defer s.Close()
				if err := s.AddOutgoing(Outgoing{ID: "1"}); err != nil {
					t.Fatalf("upgraded file has no outgoing bucket: %v", err)
				}
			}
		})
	}
}

func TestIncomingUsageAndChunks(t *testing.T) {
	s, _ := openTemp(t)
	now := time.Now().UTC()
	recs := []transfer.Record{
		{ID: "b", Peer: "P", Size: 200, State: transfer.Receiving, Updated: now},
		{ID: "a", Peer: "P", Size: 100, State: transfer.Receiving, Updated: now.Add(-time.Hour)},
		{ID: "c", Peer: "P", Size: 50, State: transfer.Receiving},
		{ID: "x", Peer: "PQ", Size: 1 << 30, State: transfer.Receiving}, // another peer whose ID starts alike
		{ID: "y", Peer: "O", Size: 1 << 30, State: transfer.Receiving},
	}
	for _, in := range recs {
		if err := s.StartIncoming(in); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.FinishIncoming("P", "c", "c", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if u := usageOf(t, s, "P"); u != (transfer.Usage{Unfinished: 2, Staged: 300, Done: 1}) {
		t.Fatalf("usage of P = %+v, want 2 unfinished (300 bytes), one done", u)
	}
	if u := usageOf(t, s, "nobody"); u != (transfer.Usage{}) {
		t.Fatalf("usage of an unknown peer = %+v", u)
	}
	open, err := s.UnfinishedIncoming("P")
	if err != nil || len(open) != 2 || open[0].ID != "a" || open[1].ID != "b" {
		t.Fatalf("UnfinishedIncoming = %+v, %v; want a, then b", open, err)
	}

	h := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	s.RecordChunks("P", "a", []uint32{2, 0, 1, 256}, [][]byte{h(2), h(0), h(1), h(255)})
	var seen []uint32
	err = s.IncomingChunks("P", "a", func(i uint32, hash []byte) error {
		seen = append(seen, i)
		if i == 2 {
			return errors.New("enough")
		}
		return nil
	})
	if err == nil || len(seen) != 3 || seen[0] != 0 || seen[1] != 1 || seen[2] != 2 {
		t.Fatalf("IncomingChunks saw %v, %v; want 0, 1, 2 in order and fn's error", seen, err)
	}
	if err := s.IncomingChunks("P", "zz", func(uint32, []byte) error { return nil }); !errors.Is(err, transfer.ErrNoRecord) {
		t.Fatalf("IncomingChunks of nothing = %v", err)
	}

	// A new version replaces the old one's size; a deleted one counts no
	// more; another peer's records never count.
	if err := s.StartIncoming(transfer.Record{ID: "b", Peer: "P", Size: 20, State: transfer.Receiving}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIncoming("P", "a"); err != nil {
		t.Fatal(err)
	}
	if u := usageOf(t, s, "P"); u != (transfer.Usage{Unfinished: 1, Staged: 20, Done: 1}) {
		t.Fatalf("usage of P after a restart and a delete = %+v", u)
	}
}

// usageOf returns the usage the store keeps for peer, after checking it
// against one summed up from the peer's records.
func usageOf(t testing.TB, s *Store, peer string) transfer.Usage {
	t.Helper()
	kept, err := s.IncomingUsage(peer)
	if err != nil {
		t.Fatal(err)
	}
	var summed transfer.Usage
	s.db.Update(func(tx *bolt.Tx) error {
		parent := tx.Bucket(bucketIncoming)
		parent.Delete(usageKey(peer))
		summed, err = loadUsage(parent, peer)
		return errors.New("roll back")
	})
	if err != nil || kept != summed {
		t.Fatalf("usage of %s: kept %+v, from the records %+v (%v)", peer, kept, summed, err)
	}
	return kept
}

// TestDoneIncomingAreBounded: finishing a transfer forgets the peer's
// oldest done records beyond MaxIncomingDone, and no other peer's.
func TestDoneIncomingAreBounded(t *testing.T) {
	s, _ := openTemp(t)
	start := time.Now().UTC().Add(-time.Hour)
	// Many done records, made in one transaction (done records have no
	// chunk list), oldest first.
	err := s.db.Update(func(tx *bolt.Tx) error {
		for i := range MaxIncomingDone + 10 {
			for _, peer := range []string{"P", "Q"} {
				in := transfer.Record{ID: fmt.Sprintf("%05d", i), Peer: peer, State: transfer.Received, Updated: start.Add(time.Duration(i) * time.Millisecond)}
				b, err := tx.Bucket(bucketIncoming).CreateBucket(incomingKey(peer, in.ID))
				if err != nil {
					return err
				}
				if err := putRecord(b, in); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StartIncoming(transfer.Record{ID: "new", Peer: "P", State: transfer.Receiving, Updated: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishIncoming("P", "new", "new", time.Now()); err != nil {
		t.Fatal(err)
	}
	p, q := usageOf(t, s, "P"), usageOf(t, s, "Q")
	if p.Done != MaxIncomingDone-donePruneSlack || q.Done != MaxIncomingDone+10 {
		t.Fatalf("done records: P %d, Q %d; want %d and %d", p.Done, q.Done, MaxIncomingDone-donePruneSlack, MaxIncomingDone+10)
	}
	if _, err := s.IncomingTransfer("P", "new"); err != nil {
		t.Fatalf("the newest done record went: %v", err)
	}
	oldestKept := fmt.Sprintf("%05d", MaxIncomingDone+10-(MaxIncomingDone-donePruneSlack-1))
	if _, err := s.IncomingTransfer("P", oldestKept); err != nil {
		t.Fatalf("record %s went: %v", oldestKept, err)
	}
	if _, err := s.IncomingTransfer("P", "00000"); !errors.Is(err, transfer.ErrNoRecord) {
		t.Fatalf("the oldest done record stayed: %v", err)
	}
}
