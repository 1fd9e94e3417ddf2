package transfer

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// laneRig gives a rig extra QUIC connections, one per lane, whose
// streams the rig's receiver serves as it serves the OFFER's.
type laneRig struct {
	*rig
	clients []*quic.Conn
	mu      sync.Mutex // guards following
	written []int64    // chunk bytes the sender wrote on each lane
	errs    []error    // what each lane stream's Receive returned
	wg      sync.WaitGroup
}

// newLaneRig makes a rig with the given number of lanes; wrap, if not
// nil, wraps the receiver's end of each stream of a lane.
func newLaneRig(t *testing.T, lanes int, wrap func(lane int, s *quic.Stream) Stream) *laneRig {
	t.Helper()
	lr := &laneRig{rig: newRig(t), written: make([]int64, lanes)}
	for k := range lanes {
		client, server := quicPair(t)
		lr.clients = append(lr.clients, client)
		lr.wg.Go(func() {
			for {
				s, err := server.AcceptStream(t.Context())
				if err != nil {
					return
				}
				var rs Stream = s
				if wrap != nil {
					rs = wrap(k, s)
				}
				lr.wg.Go(func() {
					_, err := lr.recv.Receive(t.Context(), testPeer, rs)
					lr.mu.Lock()
					lr.errs = append(lr.errs, err)
					lr.mu.Unlock()
				})
			}
		})
	}
	t.Cleanup(func() {
		for _, c := range lr.clients {
			c.CloseWithError(0, "")
		}
		lr.wg.Wait()
	})
	return lr
}

// opener opens a stream on each of the first n lanes.
func (lr *laneRig) opener() LaneOpener {
	return func(ctx context.Context, n int) []Stream {
		var out []Stream
		for k, c := range lr.clients[:min(n, len(lr.clients))] {
			s, err := c.OpenStreamSync(ctx)
			if err != nil {
				continue
			}
			out = append(out, laneCounter{s, lr, k})
		}
		return out
	}
}

// laneCounter counts the chunk bytes the sender writes on a lane.
type laneCounter struct {
	*quic.Stream
	lr *laneRig
	k  int
}

func (c laneCounter) Write(b []byte) (int, error) {
	n, err := c.Stream.Write(b)
	if n > headerLen+chunkFixedLen { // a chunk's data, not a frame header
		c.lr.mu.Lock()
		c.lr.written[c.k] += int64(n)
		c.lr.mu.Unlock()
	}
	return n, err
}

func (lr *laneRig) lanesWritten() []int64 {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return append([]int64(nil), lr.written...)
}

// TestChunksAreStripedOverLanes: a file sent with four lanes, on a path
// whose OFFER's stream is slow, arrives whole, and every lane carried
// some of it.
func TestChunksAreStripedOverLanes(t *testing.T) {
	const lanes, chunk = 4, 8 * minPiece
	lr := newLaneRig(t, lanes, nil)
	lr.sendPace = 5 * time.Millisecond
	src := lr.file("striped.bin", 100*chunk+5)
	res := lr.send(Source{ID: newID(), Path: src, Name: "striped.bin", ChunkSize: chunk, Lanes: lr.opener(), MaxLanes: lanes})
	if res.sendErr != nil || res.recvErr != nil {
		t.Fatalf("send: %v; receive: %v", res.sendErr, res.recvErr)
	}
	lr.assertSame(src, res.name)
	if res.lanes != lanes {
		t.Errorf("%d lanes used, want %d", res.lanes, lanes)
	}
	for k, n := range lr.lanesWritten() {
		if n == 0 {
			t.Errorf("lane %d carried nothing (lanes: %v)", k, lr.lanesWritten())
		}
	}
	t.Logf("bytes per lane: %v; on the OFFER's stream: %d", lr.lanesWritten(), res.sent)
}

// TestLostLaneIsMadeUpByTheOthers: the receiver's end of one lane breaks
// halfway through the file; the chunks that lane had not got ACKed go
// on the other streams, and the file arrives whole.
func TestLostLaneIsMadeUpByTheOthers(t *testing.T) {
	const lanes, chunk = 3, 4 * minPiece
	lr := newLaneRig(t, lanes, func(lane int, s *quic.Stream) Stream {
		if lane != 1 {
			return s
		}
		return &cutStream{Stream: s, left: 5*chunk + chunk/2}
	})
	lr.sendPace = time.Millisecond
	src := lr.file("lossy.bin", 100*chunk)
	res := lr.send(Source{ID: newID(), Path: src, Name: "lossy.bin", ChunkSize: chunk, Lanes: lr.opener(), MaxLanes: lanes})
	if res.sendErr != nil || res.recvErr != nil {
		t.Fatalf("send: %v; receive: %v", res.sendErr, res.recvErr)
	}
	lr.assertSame(src, res.name)
	if w := lr.lanesWritten(); w[1] < 5*chunk {
		t.Fatalf("the lane cut off carried %d bytes; the test wants it cut mid-file (lanes: %v)", w[1], w)
	}
}

// TestLanesBeyondTheLimitAreRefused: a peer that opens more lanes for
// a file than its chunk size allows gets the rest refused as busy.
func TestLanesBeyondTheLimitAreRefused(t *testing.T) {
	// A 64 KiB chunk is four pieces of minPiece: the OFFER's stream and
	// three lanes.
	const chunk = 4 * minPiece
	_, allowed := pieces(chunk, Version)
	r := newRig(t)
	h := r.hostile()
	s := h.open()
	o := hostileOffer(100*chunk, chunk)
	if err := s.send(o); err != nil {
		t.Fatal(err)
	}
	if f, err := s.next(); err != nil || f.Type() != TypeAccept {
		t.Fatalf("answer to the offer: %+v, %v", f, err)
	}
	for range allowed + 1 {
		if err := h.open().send(Lane{ID: o.ID}); err != nil {
			t.Fatal(err)
		}
	}
	// The lanes taken wait for chunks; the one too many (whichever the
	// receiver saw last) is refused at once.
	var te *Error
	if res := h.result(); !errors.As(res.err, &te) || te.Code != CodeBusy {
		t.Fatalf("a lane too many: %v, want a refusal as busy", res.err)
	}
}

// TestLaneOfNoTransferIsRefused: a LANE that names no file being
// received is refused, and takes nothing.
func TestLaneOfNoTransferIsRefused(t *testing.T) {
	r := newRig(t)
	h := r.hostile()
	s := h.open()
	if err := s.send(Lane{ID: newID()}); err != nil {
		t.Fatal(err)
	}
	f, err := s.next()
	if err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, "a lane of nothing", f, CodeBusy)
	if res := h.result(); res.err == nil {
		t.Fatal("the receiver took a lane of nothing")
	}
}

// TestPiecesStayWithinTheBuffer: however many lanes a file takes, its
// streams' pieces add up to no more than its receive buffer, which is
// what the Quota counts.
func TestPiecesStayWithinTheBuffer(t *testing.T) {
	tests := []struct {
		size      int
		v         uint8
		wantLanes int
	}{
		{MinChunkSize, Version, 0},
		{2 * minPiece, Version, 1},
		{DefaultChunkSize, Version, MaxLanes},
		{MaxChunkSize, Version, MaxLanes},
		{DefaultChunkSize, 1, 0},
		{100, Version, 0},
	}
	for _, tt := range tests {
		piece, lanes := pieces(tt.size, tt.v)
		if lanes != tt.wantLanes || piece*(lanes+1) > tt.size || piece <= 0 || lanes > 0 && piece < minPiece {
			t.Errorf("pieces(%d, v%d) = %d × (1 + %d lanes), want %d lanes within the buffer", tt.size, tt.v, piece, lanes, tt.wantLanes)
		}
	}
}

// oldReceiver answers every OFFER as a build of version 1 does: it
// cannot read the header, and refuses in a frame of version 1.
func oldReceiver(t *testing.T, r *rig) {
	t.Helper()
	go func() {
		s, err := r.server.AcceptStream(t.Context())
		if err != nil {
			return
		}
		var hdr [headerLen]byte
		s.Read(hdr[:])
		b, _ := appendFrame(nil, 1, Reject{Code: CodeVersion, Reason: "unsupported transfer protocol version: 2 (this build speaks 1)"})
		s.Write(b)
		s.Close()
		s.CancelRead(0)
	}()
}

// TestNegotiationFallsBackToAnOlderPeer: a peer of version 1 refuses our
// OFFER with CodeVersion in a frame of version 1; SendOver offers the
// file again, in version 1 and without lanes, and a receiver that
// speaks both takes it in that version.
func TestNegotiationFallsBackToAnOlderPeer(t *testing.T) {
	lr := newLaneRig(t, 2, nil)
	src := lr.file("old.bin", 50*MinChunkSize)
	var opened atomic.Int32
	open := func(ctx context.Context) (Stream, error) {
		if opened.Add(1) == 1 {
			oldReceiver(t, lr.rig)
		} else {
			go func() {
				s, err := lr.server.AcceptStream(ctx)
				if err == nil {
					lr.recv.Receive(ctx, testPeer, s)
				}
			}()
		}
		return lr.client.OpenStreamSync(ctx)
	}
	res, err := SendOver(t.Context(), open, Source{ID: newID(), Path: src, Name: "old.bin", ChunkSize: MinChunkSize, Lanes: lr.opener(), MaxLanes: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	lr.assertSame(src, res.Name)
	if opened.Load() != 2 || res.Lanes != 0 {
		t.Fatalf("%d offers, %d lanes; want a second offer, in version 1, without lanes", opened.Load(), res.Lanes)
	}
}

// TestNewerPeerIsRefusedForGood: a receiver of a version we do not
// speak refuses in a frame we cannot read; the send fails for good.
func TestNewerPeerIsRefusedForGood(t *testing.T) {
	r := newRig(t)
	go func() {
		s, err := r.server.AcceptStream(t.Context())
		if err != nil {
			return
		}
		var hdr [headerLen]byte
		s.Read(hdr[:])
		b, _ := appendFrame(nil, Version, Reject{Code: CodeVersion, Reason: "too old"})
		b[0] = Version + 1
		s.Write(b)
		s.Close()
	}()
	src := r.file("new.bin", 10)
	res, err := SendOver(t.Context(), func(ctx context.Context) (Stream, error) { return r.client.OpenStreamSync(ctx) },
		Source{ID: newID(), Path: src, Name: "new.bin"}, nil)
	if !errors.Is(err, ErrVersion) || Retryable(err) {
		t.Fatalf("send = %+v, %v; want ErrVersion, for good", res, err)
	}
}
