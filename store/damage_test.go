package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/transfer"
)

// fillState writes a database with every kind of record the agent keeps,
// large enough to span many pages, and returns its path.
func fillState(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Unix(1_700_000_000, 0).UTC()
	for i := range 20 {
		id := fmt.Sprintf("PEER%02d", i)
		if err := s.PutPeer(Peer{ID: nid(id), Name: fmt.Sprintf("peer-%d", i), Public: netip.MustParseAddrPort("198.18.0.10:4000"), Added: now}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 50 {
		if err := s.NoteRequest(Request{ID: nid(fmt.Sprintf("REQ%02d", i)), Name: "stranger", Addr: netip.MustParseAddrPort("198.18.0.99:1"), LastSeen: now}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddMessage(Message{From: "PEER01", Text: fmt.Sprintf("message %d with some text to fill pages", i), Time: now}); err != nil {
			t.Fatal(err)
		}
	}
	var out []Outgoing
	for i := range 400 {
		state := []OutgoingState{OutgoingQueued, OutgoingDone, OutgoingFailed}[i%3]
		out = append(out, Outgoing{ID: fmt.Sprintf("%032x", i), Peer: "PEER01", Path: fmt.Sprintf("/home/u/Outbox/file-%d.bin", i), Name: fmt.Sprintf("file-%d.bin", i), Size: int64(i), State: state, Queued: now, Updated: now})
	}
	if err := s.AddOutgoing(out...); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		in := transfer.Record{ID: fmt.Sprintf("%032x", i), Peer: "PEER02", Name: fmt.Sprintf("in-%d", i), Size: 1 << 30, ChunkSize: 1 << 20, State: transfer.Receiving, Staging: ".punchdrop/x.part"}
		if err := s.StartIncoming(in); err != nil {
			t.Fatal(err)
		}
		idx, hashes := []uint32{}, [][]byte{}
		for c := range 40 {
			idx, hashes = append(idx, uint32(c)), append(hashes, make([]byte, 32))
		}
		if err := s.RecordChunks("PEER02", in.ID, idx, hashes); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := s.FinishIncoming("PEER02", in.ID, in.Name, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	return path
}

// useAll runs every read and a write: nothing may panic.
func useAll(s *Store) {
	s.Peers()
	s.Requests()
	s.Messages()
	s.Activity(time.Time{})
	s.PendingOutgoing("PEER01")
	s.QueuedPeers()
	s.UnfinishedIncoming("")
	s.OutboxEntries()
	s.Paused()
	s.PutPeer(Peer{ID: nid("NEW"), Name: "new"})
	s.PruneHistory(context.Background(), time.Now())
	s.AddMessage(Message{From: "NEW", Text: "hello"})
}

// TestDamagedFileNeverPanics corrupts a random page of a real database,
// many times: Open either works (and then every method does) or says the
// file is damaged, and Reset then gives a working store that kept the
// readable peers. Before the check, 12 of 40 such files made the agent
// panic.
func TestDamagedFileNeverPanics(t *testing.T) {
	const pageSize, trials = 4096, 40
	golden, err := os.ReadFile(fillState(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	pages := len(golden) / pageSize
	rng := rand.New(rand.NewPCG(1, 2))
	damaged, peersKept := 0, 0
	for trial := range trials {
		data := append([]byte(nil), golden...)
		page := rng.IntN(pages)
		// Garble a page: all of it (a misdirected write), or a run of
		// bytes at a random offset (a torn one).
		off, n := page*pageSize, pageSize
		if trial%2 == 1 {
			off, n = off+rng.IntN(pageSize/2), 16+rng.IntN(pageSize/2)
		}
		for i := off; i < min(off+n, len(data)); i++ {
			data[i] = byte(rng.Uint32())
		}
		path := filepath.Join(t.TempDir(), "state.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("trial %d (page %d of %d): panic: %v", trial, page, pages, r)
				}
			}()
			s, err := Open(path)
			if err == nil {
				useAll(s)
				s.Close()
				return
			}
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("trial %d (page %d): Open = %v, want ErrDamaged or success", trial, page, err)
			}
			damaged++
			s, rep, err := Reset(path, time.Now())
			if err != nil {
				t.Fatalf("trial %d: Reset: %v", trial, err)
			}
			defer s.Close()
			if _, err := os.Stat(rep.MovedTo); err != nil {
				t.Fatalf("trial %d: damaged file not kept aside: %v", trial, err)
			}
			peers, err := s.Peers()
			if err != nil || len(peers) != rep.Peers {
				t.Fatalf("trial %d: fresh store has %d peers (%v), report says %d", trial, len(peers), err, rep.Peers)
			}
			peersKept += rep.Peers
			useAll(s)
		}()
	}
	t.Logf("%d damaged files: %d found damaged and reset (%d peers carried over), %d still usable", trials, damaged, peersKept, trials-damaged)
	if damaged == 0 {
		t.Fatal("no trial damaged the file: the test checks nothing")
	}
}

func TestResetKeepsPeersAndPause(t *testing.T) {
	dir := t.TempDir()
	path := fillState(t, dir)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetPaused(true); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, rep, err := Reset(path, time.Date(2026, 12, 2, 1, 2, 3, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if want := path + ".damaged-20261202T010203Z"; rep.MovedTo != want || rep.Peers != 20 {
		t.Fatalf("report %+v, want moved to %s and 20 peers", rep, want)
	}
	if paused, _ := s.Paused(); !paused {
		t.Fatal("pause was not carried over")
	}
	if out := allOutgoing(t, s); len(out) != 0 {
		t.Fatalf("fresh store has %d transfers", len(out))
	}
}
