package transfer

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// wholeFirst is the receiver's end of a stream whose first Read waits,
// up to wait, for the first want bytes the sender writes, before the
// receiver sees any of them: the receiver cannot answer before that
// Read, so the bytes arrive together only from a sender that wrote them
// without waiting for an answer.
type wholeFirst struct {
	*quic.Stream
	want    int
	wait    time.Duration
	started bool
	buf     []byte
	whole   bool // the want bytes came before any answer
}

func (w *wholeFirst) Read(p []byte) (int, error) {
	if !w.started {
		w.started = true
		w.Stream.SetReadDeadline(time.Now().Add(w.wait))
		b := make([]byte, w.want)
		n, err := io.ReadFull(w.Stream, b)
		w.Stream.SetReadDeadline(time.Time{})
		w.buf, w.whole = b[:n], err == nil
	}
	if len(w.buf) > 0 {
		n := copy(p, w.buf)
		w.buf = w.buf[n:]
		return n, nil
	}
	return w.Stream.Read(p)
}

// eagerLen is how many bytes a file of size bytes named name takes to
// send whole: OFFER, its chunk if it has one, and END.
func eagerLen(name string, size int) int {
	n := headerLen + offerFixedLen + len(name) + headerLen + HashLen
	if size > 0 {
		n += headerLen + chunkFixedLen + size
	}
	return n
}

// TestSmallFileGoesWhole: from version 3 a file of at most one chunk
// and MaxEagerSize bytes goes whole before any answer (one round trip),
// and arrives as sent; a larger one, one of two chunks, and one sent in
// version 2 wait for the ACCEPT as before.
func TestSmallFileGoesWhole(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		chunk   int
		version uint8
		eager   bool
	}{
		{"empty", 0, 0, 0, true},
		{"ten bytes", 10, 0, 0, true},
		{"the eager limit", MaxEagerSize, 0, 0, true},
		{"one byte more", MaxEagerSize + 1, 0, 0, false},
		{"two chunks", 2 * MinChunkSize, MinChunkSize, 0, false},
		{"version 2", 10, 0, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			src := r.file("small.bin", tt.size)
			// A sender that waits for the ACCEPT never sends it all: a
			// short wait tells. One that does not gets much longer.
			wait := 100 * time.Millisecond
			if tt.eager {
				wait = hostileTimeout
			}
			w := &wholeFirst{want: eagerLen("small.bin", tt.size), wait: wait}
			recvErr := make(chan error, 1)
			go func() {
				s, err := r.server.AcceptStream(t.Context())
				if err == nil {
					w.Stream = s
					_, err = r.recv.Receive(t.Context(), testPeer, w)
				}
				recvErr <- err
			}()
			stream, err := r.client.OpenStreamSync(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			res, err := Send(t.Context(), stream, Source{ID: newID(), Path: src, Name: "small.bin", ChunkSize: tt.chunk, Version: tt.version}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := <-recvErr; err != nil {
				t.Fatalf("receiver: %v", err)
			}
			r.assertSame(src, res.Name)
			if w.whole != tt.eager {
				t.Fatalf("whole before any answer: %v, want %v", w.whole, tt.eager)
			}
			if res.Sent != int64(tt.size) {
				t.Fatalf("sent %d chunk bytes of %d", res.Sent, tt.size)
			}
		})
	}
}

// corruptOnce is the receiver's end of a stream that flips the byte at
// offset at, the first time it passes.
type corruptOnce struct {
	*quic.Stream
	at, read int
}

func (c *corruptOnce) Read(p []byte) (int, error) {
	n, err := c.Stream.Read(p)
	if c.at >= c.read && c.at < c.read+n {
		p[c.at-c.read] ^= 0xff
	}
	c.read += n
	return n, err
}

// TestEagerChunkNakedIsSentAgain: the chunk of a file sent whole arrives
// corrupt, after which its END comes: the receiver NAKs it and reads on,
// and the sender sends it again with END again; the file arrives as sent.
func TestEagerChunkNakedIsSentAgain(t *testing.T) {
	r := newRig(t)
	const size = 1000
	src := r.file("again.bin", size)
	firstData := headerLen + offerFixedLen + len("again.bin") + headerLen + chunkFixedLen
	recvErr := make(chan error, 1)
	go func() {
		s, err := r.server.AcceptStream(t.Context())
		if err == nil {
			_, err = r.recv.Receive(t.Context(), testPeer, &corruptOnce{Stream: s, at: firstData + 10})
		}
		recvErr <- err
	}()
	stream, err := r.client.OpenStreamSync(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	res, err := Send(t.Context(), stream, Source{ID: newID(), Path: src, Name: "again.bin"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-recvErr; err != nil {
		t.Fatalf("receiver: %v", err)
	}
	r.assertSame(src, res.Name)
	if res.Sent != 2*size {
		t.Fatalf("sent %d chunk bytes; want the chunk twice, %d", res.Sent, 2*size)
	}
}

// TestEagerFallsBackToAnOlderPeer: a peer of version 2 refuses the
// OFFER of version 3 (its chunk and END unread); SendOver offers the
// file again in version 2, which waits for the ACCEPT.
func TestEagerFallsBackToAnOlderPeer(t *testing.T) {
	r := newRig(t)
	src := r.file("small.txt", 100)
	var opened atomic.Int32
	var second *wholeFirst
	done := make(chan error, 1)
	open := func(ctx context.Context) (Stream, error) {
		if opened.Add(1) == 1 {
			go func() {
				s, err := r.server.AcceptStream(ctx)
				if err != nil {
					return
				}
				var hdr [headerLen]byte
				io.ReadFull(s, hdr[:])
				b, _ := appendFrame(nil, 2, Reject{Code: CodeVersion, Reason: "unsupported transfer protocol version: 3 (this build speaks 1 to 2)"})
				s.Write(b)
				s.Close()
				s.CancelRead(0)
			}()
		} else {
			second = &wholeFirst{want: eagerLen("small.txt", 100), wait: 100 * time.Millisecond}
			go func() {
				s, err := r.server.AcceptStream(ctx)
				if err == nil {
					second.Stream = s
					_, err = r.recv.Receive(ctx, testPeer, second)
				}
				done <- err
			}()
		}
		return r.client.OpenStreamSync(ctx)
	}
	res, err := SendOver(t.Context(), open, Source{ID: newID(), Path: src, Name: "small.txt"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("receiver: %v", err)
	}
	r.assertSame(src, res.Name)
	if opened.Load() != 2 || second.whole || res.Version != 2 {
		t.Fatalf("%d offers, the second sent whole: %v, in version %d; want a second offer, in version 2, that waits", opened.Load(), second.whole, res.Version)
	}
}

// TestEagerOfferOfReceivedFile: a file received already, offered again
// whole (its sender missed our END_ACK), is answered from its record:
// its chunk is skipped unread and it is not stored twice.
func TestEagerOfferOfReceivedFile(t *testing.T) {
	r := newRig(t)
	src := r.file("twice.txt", 100)
	id := newID()
	first := r.send(Source{ID: id, Path: src, Name: "twice.txt"})
	second := r.send(Source{ID: id, Path: src, Name: "twice.txt"})
	if first.sendErr != nil || second.sendErr != nil || second.recvErr != nil || second.name != first.name {
		t.Fatalf("first %q %v, second %q %v %v", first.name, first.sendErr, second.name, second.sendErr, second.recvErr)
	}
	if second.sent != first.sent {
		t.Fatalf("the second offer wrote %d bytes, the first %d: both go whole", second.sent, first.sent)
	}
	var te *Error
	if errors.As(second.recvErr, &te) {
		t.Fatalf("receiver: %v", te)
	}
}

// countingJournal counts the journal's updates, and fails IncomingChunks
// while failChunks is set.
type countingJournal struct {
	*memJournal
	starts, records, finishes atomic.Int32
	failChunks                atomic.Bool
}

func (j *countingJournal) StartIncoming(rec Record) error {
	j.starts.Add(1)
	return j.memJournal.StartIncoming(rec)
}

func (j *countingJournal) RecordChunks(peer, id string, indexes []uint32, hashes [][]byte) error {
	j.records.Add(1)
	return j.memJournal.RecordChunks(peer, id, indexes, hashes)
}

func (j *countingJournal) FinishIncoming(peer, id, final string, at time.Time) error {
	j.finishes.Add(1)
	return j.memJournal.FinishIncoming(peer, id, final, at)
}

func (j *countingJournal) IncomingChunks(peer, id string, fn func(uint32, []byte) error) error {
	if j.failChunks.Load() {
		return errors.New("test: the journal cannot be read")
	}
	return j.memJournal.IncomingChunks(peer, id, fn)
}

// TestChunkThatCameWithEndIsNotRecorded: the chunk of a small file sent
// whole comes with its END; recording it would cost a commit that
// FinishIncoming undoes at once, so the file costs the journal two
// updates, not three. Should the file fail to finish, its chunk is
// recorded after all, and the next offer does not send it again.
func TestChunkThatCameWithEndIsNotRecorded(t *testing.T) {
	r := newRig(t)
	j := &countingJournal{memJournal: r.journal}
	r.recv.Journal = j
	src := r.file("small.txt", 100)
	res := r.send(Source{ID: newID(), Path: src, Name: "small.txt"})
	if res.sendErr != nil || res.recvErr != nil {
		t.Fatalf("send: %v; receive: %v", res.sendErr, res.recvErr)
	}
	r.assertSame(src, res.name)
	if s, rc, f := j.starts.Load(), j.records.Load(), j.finishes.Load(); s != 1 || rc != 0 || f != 1 {
		t.Fatalf("journal updates: %d starts, %d chunk records, %d finishes; want 1, 0, 1", s, rc, f)
	}

	id := newID()
	j.failChunks.Store(true)
	res = r.send(Source{ID: id, Path: src, Name: "again.txt"})
	if res.sendErr == nil || res.recvErr == nil {
		t.Fatalf("send: %v; receive: %v; want both failed", res.sendErr, res.recvErr)
	}
	if n := r.recordedChunks(id); n != 1 {
		t.Fatalf("%d chunks recorded after the failed finish, want 1", n)
	}
	j.failChunks.Store(false)
	held := int64(-1) // what the receiver held when it accepted: the first report
	res = r.transfer(t.Context(), t.Context(), Source{ID: id, Path: src, Name: "again.txt"}, func(done, _ int64) {
		if held < 0 {
			held = done
		}
	})
	if res.sendErr != nil || res.recvErr != nil {
		t.Fatalf("send: %v; receive: %v", res.sendErr, res.recvErr)
	}
	r.assertSame(src, res.name)
	if held != 100 {
		t.Fatalf("the receiver held %d bytes when it accepted the retry, want all 100", held)
	}
}
