package session

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/simnet"
	"github.com/punchdrop/punchdrop/testutil"
)

// chunkReceiver is the receiving end of a file sent in chunks, resumed
// by chunk as transfer does: the sender names the first chunk, sends the
// rest in order, and the receiver confirms each chunk it holds.
type chunkReceiver struct {
	size int           // bytes per chunk
	pace time.Duration // to store a chunk durably

	mu   sync.Mutex // guards following
	held map[uint32]bool
}

// serve receives chunks on one stream until it ends.
func (r *chunkReceiver) serve(ctx context.Context, _ *Session, stream *Stream) {
	stop := context.AfterFunc(ctx, func() { stream.CancelRead(0); stream.CancelWrite(0) })
	defer stop()
	defer stream.Close()
	var hdr [4]byte
	if _, err := io.ReadFull(stream, hdr[:]); err != nil {
		return
	}
	buf := make([]byte, r.size)
	for i := binary.BigEndian.Uint32(hdr[:]); ; i++ {
		if _, err := io.ReadFull(stream, buf); err != nil {
			return
		}
		time.Sleep(r.pace)
		r.mu.Lock()
		r.held[i] = true
		r.mu.Unlock()
		if _, err := stream.Write(binary.BigEndian.AppendUint32(nil, i)); err != nil {
			return
		}
	}
}

func (r *chunkReceiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.held)
}

// chunkSender sends chunks to a peer, resuming after the first chunk the
// receiver does not hold whenever the stream fails.
type chunkSender struct {
	n       *Node
	peer    NodeID
	size    int           // bytes per chunk
	chunks  uint32        // chunks in the file
	written atomic.Int64  // bytes put on streams, resent ones included
	held    atomic.Uint32 // chunks the receiver confirmed (they come in order)
	// resumed is closed when the first confirmation arrives on a stream
	// after the first.
	resumed chan struct{}
	cutBy   error // what ended the first attempt that failed
}

func (s *chunkSender) send(ctx context.Context) error {
	chunk := make([]byte, s.size)
	for attempt := 0; s.held.Load() < s.chunks; attempt++ {
		sess, err := s.n.WaitSession(ctx, s.peer)
		if err != nil {
			return err
		}
		err = s.attempt(ctx, sess, chunk, attempt > 0)
		if ctx.Err() != nil {
			return err
		}
		if err != nil && s.cutBy == nil {
			s.cutBy = err
		}
	}
	return nil
}

// attempt sends the chunks from the first the receiver does not hold on a
// new stream, until they are all confirmed or the stream fails.
func (s *chunkSender) attempt(ctx context.Context, sess *Session, chunk []byte, resume bool) error {
	stream, err := sess.OpenTransferStream(ctx)
	if err != nil {
		return err
	}
	defer stream.CancelWrite(0)
	first := s.held.Load()
	if _, err := stream.Write(binary.BigEndian.AppendUint32(nil, first)); err != nil {
		return err
	}
	acks := make(chan error, 1)
	go func() {
		var b [4]byte
		for once := resume; ; once = false {
			if _, err := io.ReadFull(stream, b[:]); err != nil {
				acks <- err
				return
			}
			s.held.Store(binary.BigEndian.Uint32(b[:]) + 1)
			if once {
				close(s.resumed)
			}
			if s.held.Load() == s.chunks {
				acks <- nil
				return
			}
		}
	}()
	for i := first; i < s.chunks; i++ {
		n, err := stream.Write(chunk)
		s.written.Add(int64(n))
		if err != nil {
			return err
		}
	}
	stream.Close()
	return <-acks
}

// TestSimulatedMoveDuringTransfer measures what moving a session to a
// better path costs a transfer that runs on it: the old session is
// closed, the transfer fails, and it resumes on the new session after the
// last chunk the receiver holds. It reports the time from the LAN path
// opening to the first chunk confirmed on it, and the bytes sent
// twice. (The agent adds its own wait before it retries a failed file.)
func TestSimulatedMoveDuringTransfer(t *testing.T) {
	const (
		chunkSize = 1 << 20 // transfer.DefaultChunkSize
		chunks    = 40
	)
	w := newSimWorld(t)
	site := w.hairpinSite()
	// The receiver stores 50 MiB/s, a disk that fsyncs each chunk.
	recv := &chunkReceiver{size: chunkSize, pace: 20 * time.Millisecond, held: map[uint32]bool{}}
	a := &testNode{Node: startNode(t, w.config(t, site, "alice"))}
	cfg := w.config(t, site, "bob")
	cfg.Events.Transfer = recv.serve
	b := &testNode{Node: startNode(t, cfg)}
	waitNAT(t, a.Node)
	waitNAT(t, b.Node)
	// The LAN drops everything until the test opens it: the nodes tell
	// each other their LAN addresses over the first session (gossip.go).
	site.SetLANLink(simnet.Link{Loss: 1})
	directFirst(a, b)
	waitPath(t, a, b.ID(), PathDirect, 2*simPunchTimeout)

	s := &chunkSender{n: a.Node, peer: b.ID(), size: chunkSize, chunks: chunks, resumed: make(chan struct{})}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- s.send(ctx) }()
	testutil.WaitFor(t, 10*time.Second, "a quarter of the file", func() bool { return s.held.Load() >= chunks/4 })
	start := time.Now()
	// The LAN opens, and the addresses are heard again (as a LAN
	// announcement would bring them), which wakes the peer loops.
	site.SetLANLink(simnet.Link{})
	introduce(a, b)
	select {
	case <-s.resumed:
	case err := <-sent:
		t.Fatalf("the transfer ended without moving: %v", err)
	}
	took := time.Since(start)
	if err := <-sent; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if got := recv.count(); got != chunks {
		t.Fatalf("the receiver holds %d of %d chunks", got, chunks)
	}
	if st := stateOf(a, b.ID()); st.Path != PathLAN {
		t.Fatalf("the session did not move to the LAN: %+v", st)
	}
	if !Moved(s.cutBy) {
		t.Fatalf("the transfer was cut off by %v, which Moved does not recognise: its owner would back off before resuming", s.cutBy)
	}
	resent := s.written.Load() - chunkSize*chunks
	t.Logf("moving to the LAN mid-transfer: resumed on the new session %s after the LAN opened; %d bytes (%.2f chunks of %d) sent twice",
		took.Round(time.Millisecond), resent, float64(resent)/chunkSize, chunkSize)
	// What can be lost: the chunk being stored, the one being written,
	// and what quic-go's stream window (at most 6 MiB) holds between.
	if maxLost := int64(2*chunkSize + 6<<20); resent > maxLost {
		t.Fatalf("%d bytes sent twice; at most %d were in flight", resent, maxLost)
	}
}
