package store

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/punchdrop/punchdrop/session"
)

func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// allOutgoing returns every outgoing record, ordered by ID.
func allOutgoing(t testing.TB, s *Store) []Outgoing {
	t.Helper()
	all, err := list[Outgoing](s.db, bucketOutgoing, "outgoing transfer")
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func TestOpenIsPrivateAndExclusive(t *testing.T) {
	_, path := openTemp(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("state file mode %o, want 600", perm)
	}
	if _, err := Open(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
}

func TestPeersPersistAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.NoteRequest(Request{ID: nid("B"), Name: "bob", LastSeen: time.Now()}); err != nil {
		t.Fatal(err)
	}
	want := Peer{ID: nid("B"), Name: "bob", Public: netip.MustParseAddrPort("198.18.0.10:4000"), LAN: []netip.AddrPort{netip.MustParseAddrPort("198.19.1.10:4000")}, Added: time.Unix(100, 0).UTC()}
	if err := s.PutPeer(want); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdatePeer(nid("B"), func(p *Peer) { p.LastAddr = netip.MustParseAddrPort("198.18.0.10:4001") }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	peers, err := s.Peers()
	if err != nil || len(peers) != 1 {
		t.Fatalf("Peers = %v, %v", peers, err)
	}
	if got := peers[0]; got.Name != "bob" || got.LastAddr != netip.MustParseAddrPort("198.18.0.10:4001") || got.LAN[0] != want.LAN[0] || !got.Added.Equal(want.Added) {
		t.Fatalf("peer after reopen = %+v", got)
	}
	if reqs, _ := s.Requests(); len(reqs) != 0 {
		t.Fatalf("request from a peer survived PutPeer: %v", reqs)
	}
	if err := s.RemovePeer(nid("B")); err != nil {
		t.Fatal(err)
	}
	if err := s.RemovePeer(nid("B")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second RemovePeer = %v, want ErrNotFound", err)
	}
	if err := s.UpdatePeer(nid("B"), func(*Peer) {}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("UpdatePeer of removed = %v, want ErrNotFound", err)
	}
}

// TestRequestsAreBounded: a full list of pending requests refuses new
// ones and keeps every old one (a flood must not push out a real request),
// still updates those pending, and makes room only by dropping requests
// not heard from for RequestMaxAge.
func TestRequestsAreBounded(t *testing.T) {
	s, _ := openTemp(t)
	now := time.Now()
	stale := now.Add(-RequestMaxAge - time.Hour)
	for i := range MaxRequests {
		seen := now.Add(time.Duration(i) * time.Second)
		if i < 2 {
			seen = stale // N0 and N1 were last heard from long ago
		}
		if err := s.NoteRequest(Request{ID: nid(fmt.Sprint("N", i)), LastSeen: seen}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		id      string
		wantErr error
	}{
		{"N5", nil},                  // pending: updated
		{"new1", nil},                // takes the place of the stale N0 and N1
		{"new2", nil},                // the other stale place
		{"new3", ErrTooManyRequests}, // full of recent requests
		{"new4", ErrTooManyRequests}, // still full
		{"N63", nil},                 // pending: still updated
	}
	for _, tc := range tests {
		err := s.NoteRequest(Request{ID: nid(tc.id), LastSeen: now})
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Fatalf("NoteRequest(%s) = %v, want %v", tc.id, err, tc.wantErr)
		}
	}
	reqs, err := s.Requests()
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != MaxRequests {
		t.Fatalf("%d requests kept, want %d", len(reqs), MaxRequests)
	}
	ids := map[session.NodeID]bool{}
	for _, r := range reqs {
		ids[r.ID] = true
	}
	for i := 2; i < MaxRequests; i++ {
		if !ids[nid(fmt.Sprint("N", i))] {
			t.Fatalf("recent request N%d was dropped", i)
		}
	}
	if ids[nid("N0")] || ids[nid("N1")] || ids[nid("new3")] || !ids[nid("new1")] || !ids[nid("new2")] {
		t.Fatal("the wrong requests were kept")
	}
	if err := s.DeleteRequest(nid("N8")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRequest(nid("N8")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second DeleteRequest = %v", err)
	}
	if err := s.NoteRequest(Request{ID: nid("new3"), LastSeen: now}); err != nil {
		t.Fatalf("a request after one was declined: %v", err)
	}
}

func TestNoteRequestKeepsFirstSeen(t *testing.T) {
	s, _ := openTemp(t)
	first := time.Unix(1000, 0).UTC()
	s.NoteRequest(Request{ID: nid("X"), FirstSeen: first, LastSeen: first})
	s.NoteRequest(Request{ID: nid("X"), FirstSeen: first.Add(time.Hour), LastSeen: first.Add(time.Hour)})
	reqs, _ := s.Requests()
	if len(reqs) != 1 || !reqs[0].FirstSeen.Equal(first) || !reqs[0].LastSeen.Equal(first.Add(time.Hour)) {
		t.Fatalf("requests = %+v", reqs)
	}
}

func TestMessagesKeepOrderAndBound(t *testing.T) {
	s, _ := openTemp(t)
	for i := range MaxMessages + 3 {
		if err := s.AddMessage(Message{From: "A", Text: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := s.Messages()
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != MaxMessages || msgs[0].Text != "3" || msgs[len(msgs)-1].Text != fmt.Sprint(MaxMessages+2) {
		t.Fatalf("%d messages, first %q last %q", len(msgs), msgs[0].Text, msgs[len(msgs)-1].Text)
	}
}

func TestPauseIsRemembered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	reopen := func() *Store {
		s, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := reopen()
	if got, err := s.Paused(); err != nil || got {
		t.Fatalf("a new state file: Paused = %v, %v", got, err)
	}
	for _, want := range []bool{true, true, false, true} {
		if err := s.SetPaused(want); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s = reopen()
		if got, err := s.Paused(); err != nil || got != want {
			t.Fatalf("after reopen: Paused = %v, %v; want %v", got, err, want)
		}
	}
	s.Close()
}

// nid is a node ID made from a name, for tests that need many.
func nid(name string) session.NodeID { return session.NodeID(sha256.Sum256([]byte(name))) }

// Peers and requests stored by older versions, whose IDs and addresses
// were plain strings (and empty when unknown), read as the typed values:
// the text is the same.
func TestOlderPeerRecordsRead(t *testing.T) {
	s, _ := openTemp(t)
	id := nid("B")
	old := `{"id":"` + id.String() + `","name":"bob","public":"198.18.0.10:4000","lan":["198.19.1.10:4000"],"last_addr":"","added":"2026-01-02T03:04:05Z"}`
	err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketPeers).Put(peerKey(id), []byte(old)) })
	if err != nil {
		t.Fatal(err)
	}
	peers, err := s.Peers()
	if err != nil || len(peers) != 1 {
		t.Fatalf("Peers = %v, %v", peers, err)
	}
	p := peers[0]
	if p.ID != id || p.Public != netip.MustParseAddrPort("198.18.0.10:4000") || len(p.LAN) != 1 || p.LastAddr.IsValid() {
		t.Fatalf("older record read as %+v", p)
	}
}
