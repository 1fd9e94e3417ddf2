package transfer

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"testing"
	"time"
)

// hugeSize is an offer no disk here holds: 128 TiB, MaxChunks chunks of
// the largest size.
const hugeSize = MaxChunks * MaxChunkSize

// hostileOffer is an offer of size bytes in chunks of chunk bytes.
func hostileOffer(size uint64, chunk uint32) Offer {
	return Offer{ID: newID(), Size: size, ChunkSize: chunk, ModTime: time.Now(), Mode: 0o644, Name: "big.iso"}
}

// TestRefusedOffersLeaveNothing: offers refused for want of space, or
// because the peer has staged its share, leave no record, no staging
// file and no blocks behind, however many come (the receiver used to
// record an offer before reserving its space: 151 refused offers left
// 151 records and 151 empty .part files).
func TestRefusedOffersLeaveNothing(t *testing.T) {
	tests := []struct {
		name   string
		size   uint64
		chunk  uint32
		limits DiskLimits
	}{
		{"more than the disk", hugeSize, MaxChunkSize, DefaultDiskLimits()},
		{"more than the peer's share", 2 << 20, MinChunkSize, DiskLimits{MaxStagedPerPeer: 1 << 20}},
	}
	const offers = 151
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			r.recv.Quota = NewQuota(tt.limits)
			h := r.hostile()
			start := time.Now()
			for range offers {
				_, answer := h.offer(hostileOffer(tt.size, tt.chunk))
				mustRefuse(t, tt.name, answer, CodeNoSpace)
				h.result()
			}
			t.Logf("%d refused offers, %v each (a round trip on loopback included)", offers, time.Since(start)/offers)
			r.mustBeClean(tt.name)
			if _, err := os.Stat(filepath.Join(r.downloads, StagingDir)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("refused offers made the staging folder: %v", err)
			}
		})
	}
}

// unfinished records an interrupted transfer from testPeer, last
// touched at updated, with its staging file.
func (r *rig) unfinished(name string, size int64, updated time.Time) Record {
	r.t.Helper()
	rec := Record{
		ID: newID().String(), Peer: testPeer, Name: name, Size: size, ChunkSize: MinChunkSize,
		Staging: path.Join(StagingDir, name+".part"), State: Receiving, Started: updated, Updated: updated,
	}
	if err := os.MkdirAll(filepath.Join(r.downloads, StagingDir), 0o700); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.downloads, rec.Staging), []byte("x"), 0o600); err != nil {
		r.t.Fatal(err)
	}
	if err := r.journal.StartIncoming(rec); err != nil {
		r.t.Fatal(err)
	}
	return rec
}

// mustBeGone fails unless rec's record and staging file are gone.
func (r *rig) mustBeGone(rec Record) {
	r.t.Helper()
	if _, err := r.journal.IncomingTransfer(rec.Peer, rec.ID); !errors.Is(err, ErrNoRecord) {
		r.t.Fatalf("%s: record still there (%v)", rec.Name, err)
	}
	if _, err := os.Stat(filepath.Join(r.downloads, rec.Staging)); !errors.Is(err, os.ErrNotExist) {
		r.t.Fatalf("%s: staging file still there (%v)", rec.Name, err)
	}
}

// interrupt offers a small file and breaks the stream once it is
// accepted: the transfer stays unfinished, waiting for a resume.
func (h *hostilePeer) interrupt(o Offer) Frame {
	h.t.Helper()
	s, answer := h.offer(o)
	s.CancelWrite(0)
	s.CancelRead(0)
	h.result()
	return answer
}

// TestUnfinishedPerPeerBounded: a peer with MaxUnfinishedPerPeer
// unfinished transfers gets a new one only in place of one untouched for
// over an hour, the least recently touched first; otherwise it is told
// to wait (busy).
func TestUnfinishedPerPeerBounded(t *testing.T) {
	r := newRig(t)
	h := r.hostile()
	now := time.Now()
	stale := []Record{
		r.unfinished("stale-3h", 10, now.Add(-3*time.Hour)),
		r.unfinished("stale-2h", 10, now.Add(-2*time.Hour)),
	}
	for i := range MaxUnfinishedPerPeer - len(stale) {
		r.unfinished(fmt.Sprintf("recent-%d", i), 10, now.Add(-evictableAfter/2))
	}
	for _, old := range stale {
		if answer := h.interrupt(hostileOffer(10, MinChunkSize)); answer.Type() != TypeAccept {
			t.Fatalf("offer in place of %s: %+v", old.Name, answer)
		}
		r.mustBeGone(old)
	}
	mustRefuse(t, "an offer beyond the limit", h.interrupt(hostileOffer(10, MinChunkSize)), CodeBusy)
	if u, _ := r.journal.IncomingUsage(testPeer); u.Unfinished != MaxUnfinishedPerPeer {
		t.Fatalf("%d unfinished transfers, want %d", u.Unfinished, MaxUnfinishedPerPeer)
	}
}

// TestStagedPerPeerBounded: a peer's unfinished transfers count at their
// full size against MaxStagedPerPeer; one untouched for over an hour
// makes room for a new offer, a recent one does not.
func TestStagedPerPeerBounded(t *testing.T) {
	r := newRig(t)
	r.recv.Quota = NewQuota(DiskLimits{MaxStagedPerPeer: 1 << 20})
	h := r.hostile()
	stale := r.unfinished("stale", 600<<10, time.Now().Add(-2*time.Hour))
	recent := r.unfinished("recent", 300<<10, time.Now())
	if answer := h.interrupt(hostileOffer(700<<10, MinChunkSize)); answer.Type() != TypeAccept {
		t.Fatalf("offer in place of a stale transfer: %+v", answer)
	}
	r.mustBeGone(stale)
	mustRefuse(t, "an offer beyond the share", h.interrupt(hostileOffer(100<<10, MinChunkSize)), CodeNoSpace)
	if _, err := r.journal.IncomingTransfer(testPeer, recent.ID); err != nil {
		t.Fatalf("a recent transfer went: %v", err)
	}
}

// TestMemoryBudgetAnswersBusy: each transfer holds a chunk's worth of
// the memory budget from its admission to its end; an offer beyond the
// budget is answered busy and gets in once a transfer ends.
func TestMemoryBudgetAnswersBusy(t *testing.T) {
	r := newRig(t)
	q := NewQuota(DefaultDiskLimits())
	q.memoryPerPeer = 2 * MaxChunkSize
	r.recv.Quota = q
	h := r.hostile()
	first, answer := h.offer(hostileOffer(MaxChunkSize, MaxChunkSize))
	if answer.Type() != TypeAccept {
		t.Fatalf("first offer: %+v", answer)
	}
	if _, answer := h.offer(hostileOffer(3*MaxChunkSize, MaxChunkSize)); answer.Type() != TypeAccept {
		t.Fatalf("second offer: %+v", answer)
	}
	_, answer = h.offer(hostileOffer(10, MaxChunkSize))
	mustRefuse(t, "an offer beyond the budget", answer, CodeBusy)
	h.result()
	first.CancelWrite(0)
	h.result()
	if _, answer := h.offer(hostileOffer(10, MaxChunkSize)); answer.Type() != TypeAccept {
		t.Fatalf("offer once a transfer ended: %+v", answer)
	}
}

func TestQuotaMemory(t *testing.T) {
	q := NewQuota(DefaultDiskLimits())
	q.memoryPerPeer, q.memoryTotal = 10, 15
	steps := []struct {
		peer string
		n    int64 // negative: release
		ok   bool
	}{
		{"a", 6, true},
		{"a", 5, false}, // a's budget
		{"a", 4, true},
		{"b", 6, false}, // the total
		{"b", 5, true},
		{"a", -6, true},
		{"b", 5, true},
		{"b", 1, false}, // b's budget
		{"c", 2, false}, // the total
		{"a", -4, true},
		{"c", 5, true},
	}
	for i, s := range steps {
		if s.n < 0 {
			q.releaseMemory(s.peer, -s.n)
			continue
		}
		if got := q.takeMemory(s.peer, s.n); got != s.ok {
			t.Fatalf("step %d: take %d for %s = %v, want %v (held %v, %d in all)", i, s.n, s.peer, got, s.ok, q.memory, q.memoryAll)
		}
	}
	if q.memoryAll != 15 || len(q.memory) != 2 {
		t.Fatalf("held %v, %d in all; want b 10, c 5", q.memory, q.memoryAll)
	}
}

// TestHostileFramesAreRefusedBeforeAllocation: frames whose header
// claims more than the offer allows are refused from the header, and
// chunks that do not fit the offer are refused.
func TestHostileFramesAreRefusedBeforeAllocation(t *testing.T) {
	r := newRig(t)
	h := r.hostile()
	chunk := func(i uint32, n int) Chunk { return Chunk{Index: i, Data: make([]byte, n)} }
	tests := []struct {
		name  string
		offer *Offer // nil: the lie is the first frame
		lie   func(s *hostileStream) error
		want  error
	}{
		{"a CHUNK as first frame", nil, func(s *hostileStream) error { return s.header(TypeChunk, chunkFixedLen+MaxChunkSize) }, ErrTooLarge},
		{"an ACCEPT as first frame", nil, func(s *hostileStream) error { return s.header(TypeAccept, 4+MaxChunks/8) }, ErrTooLarge},
		{"a CHUNK above the chunk size", &Offer{Size: 10 << 20, ChunkSize: MinChunkSize}, func(s *hostileStream) error {
			return s.header(TypeChunk, chunkFixedLen+MinChunkSize+1)
		}, ErrTooLarge},
		{"a CHUNK above a small file", &Offer{Size: 100, ChunkSize: MaxChunkSize}, func(s *hostileStream) error {
			return s.header(TypeChunk, chunkFixedLen+MaxChunkSize)
		}, ErrTooLarge},
		{"an index past the end", &Offer{Size: 2 * MinChunkSize, ChunkSize: MinChunkSize}, func(s *hostileStream) error {
			return s.send(chunk(7, MinChunkSize))
		}, nil},
		{"an index near 2^32", &Offer{Size: 2 * MinChunkSize, ChunkSize: MinChunkSize}, func(s *hostileStream) error {
			return s.send(chunk(1<<32-1, MinChunkSize))
		}, nil},
		{"a short chunk", &Offer{Size: 2 * MinChunkSize, ChunkSize: MinChunkSize}, func(s *hostileStream) error {
			return s.send(chunk(0, 10))
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := h.open()
			if tt.offer != nil {
				o := hostileOffer(tt.offer.Size, tt.offer.ChunkSize)
				if err := s.send(o); err != nil {
					t.Fatal(err)
				}
				if f, err := s.next(); err != nil || f.Type() != TypeAccept {
					t.Fatalf("answer to the offer: %+v, %v", f, err)
				}
			}
			if err := tt.lie(s); err != nil {
				t.Fatal(err)
			}
			f, err := s.next()
			if err != nil {
				t.Fatal(err)
			}
			mustRefuse(t, tt.name, f, CodeProtocol)
			res := h.result()
			var te *Error
			if tt.want != nil && !errors.Is(res.err, tt.want) || tt.want == nil && (!errors.As(res.err, &te) || te.Code != CodeProtocol) {
				t.Fatalf("receiver: %v, want a protocol error (%v)", res.err, tt.want)
			}
		})
	}
}
