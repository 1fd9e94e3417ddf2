package store

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestCompactGivesBackFreePages: a file whose history was pruned is
// copied into a small one holding what stayed; a file mostly in use, or
// small, is left as it is.
func TestCompactGivesBackFreePages(t *testing.T) {
	s, path := openTemp(t)
	old := time.Now().Add(-48 * time.Hour).UTC()
	for i := range 4 {
		var batch []Outgoing
		for j := range 5000 {
			batch = append(batch, Outgoing{ID: fmt.Sprintf("%02d-%05d", i, j), Peer: "P", Path: "/home/u/Outbox/some-file.bin", State: OutgoingDone, Updated: old})
		}
		if err := s.AddOutgoing(batch...); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddOutgoing(Outgoing{ID: "kept", Peer: "P", State: OutgoingQueued, Queued: old}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPeer(Peer{ID: nid("P"), Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	full := size()
	if db, err := compact(path, s.db, 1<<20); err != nil || db != s.db || size() != full {
		t.Fatalf("a file in use was compacted (%v): %d bytes, then %d", err, full, size())
	}
	if _, err := s.PruneHistory(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if db, err := compact(path, s.db, full+1); err != nil || db != s.db {
		t.Fatalf("a file below the size to compact was compacted: %v", err)
	}
	db, err := compact(path, s.db, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	s.db = db
	if got := size(); got >= full/4 {
		t.Fatalf("compacted from %d to %d bytes, want a quarter at most", full, got)
	}
	if _, err := os.Stat(path + compactSuffix); !os.IsNotExist(err) {
		t.Fatalf("the copy's name is still taken: %v", err)
	}
	queued, err := s.PendingOutgoing("P")
	if err != nil || len(queued) != 1 || queued[0].ID != "kept" {
		t.Fatalf("the queue after compaction: %+v, %v", queued, err)
	}
	if peers, err := s.Peers(); err != nil || len(peers) != 1 {
		t.Fatalf("peers after compaction: %+v, %v", peers, err)
	}
	if err := s.AddOutgoing(Outgoing{ID: "new", Peer: "P", State: OutgoingQueued}); err != nil {
		t.Fatalf("the compacted file takes no writes: %v", err)
	}
}
