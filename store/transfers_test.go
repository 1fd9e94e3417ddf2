package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestOutgoingQueue(t *testing.T) {
	s, _ := openTemp(t)
	now := time.Now().UTC().Truncate(time.Second)
	a := Outgoing{ID: "01", Peer: "P", Path: "/x/a.txt", Name: "a.txt", Size: 3, State: StateQueued, Queued: now}
	b := Outgoing{ID: "02", Peer: "P", Path: "/x/d/b.txt", Name: "d/b.txt", Size: 5, State: StateQueued, Queued: now}
	if err := s.AddOutgoing(a, b); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateOutgoing("02", func(o *Outgoing) { o.State, o.Final = StateDone, "d/b (1).txt" }); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateOutgoing("03", func(*Outgoing) {}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing transfer = %v, want ErrNotFound", err)
	}
	got, err := s.OutgoingTransfers()
	if err != nil || len(got) != 2 || got[0] != a || got[1].State != StateDone || got[1].Final != "d/b (1).txt" {
		t.Fatalf("OutgoingTransfers = %+v, %v", got, err)
	}
}

func TestIncomingChunksSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	in := Incoming{ID: "aa", Peer: "P", Name: "v.mkv", Size: 10 << 20, ChunkSize: 1 << 20, Staging: ".punchdrop/aa.part", State: StateReceiving}
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
	got, err := s.IncomingTransfer("P", "aa", func(i uint32, hash []byte) {
		if !bytes.Equal(hash, h(byte(i))) {
			t.Errorf("chunk %d hash %x", i, hash)
		}
		seen = append(seen, i)
	})
	if err != nil || got.Name != "v.mkv" || len(seen) != 3 || seen[0] != 0 || seen[1] != 3 || seen[2] != 7 {
		t.Fatalf("IncomingTransfer = %+v, chunks %v, %v", got, seen, err)
	}

	// Starting the same transfer again (a new version) drops its chunks.
	if err := s.StartIncoming(in); err != nil {
		t.Fatal(err)
	}
	seen = nil
	s.IncomingTransfer("P", "aa", func(i uint32, _ []byte) { seen = append(seen, i) })
	if len(seen) != 0 {
		t.Fatalf("restarted transfer kept chunks %v", seen)
	}

	// Done keeps the record (a repeated offer is answered from it) but
	// not the chunk list.
	s.RecordChunks("P", "aa", []uint32{1}, [][]byte{h(1)})
	if err := s.UpdateIncoming("P", "aa", func(in *Incoming) { in.State, in.Final = StateDone, "v (1).mkv" }); err != nil {
		t.Fatal(err)
	}
	seen = nil
	got, err = s.IncomingTransfer("P", "aa", func(i uint32, _ []byte) { seen = append(seen, i) })
	if err != nil || got.State != StateDone || got.Final != "v (1).mkv" || len(seen) != 0 {
		t.Fatalf("done transfer = %+v, chunks %v, %v", got, seen, err)
	}
	if all, err := s.IncomingTransfers(); err != nil || len(all) != 1 {
		t.Fatalf("IncomingTransfers = %+v, %v", all, err)
	}
	if err := s.DeleteIncoming("P", "aa"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIncoming("P", "aa"); err != nil {
		t.Fatalf("deleting twice = %v", err)
	}
	if _, err := s.IncomingTransfer("P", "aa", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v, want ErrNotFound", err)
	}
	if err := s.RecordChunks("P", "aa", []uint32{1}, [][]byte{h(1)}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RecordChunks without a record = %v, want ErrNotFound", err)
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
