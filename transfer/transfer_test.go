package transfer

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/punchdrop/punchdrop/testutil"
)

const testPeer = "PEERAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// rig is a sender and a receiver joined by a real QUIC connection, with
// an in-memory journal and a real downloads folder on the receiving side.
type rig struct {
	t         testing.TB
	client    *quic.Conn
	server    *quic.Conn
	recv      *Receiver
	journal   *memJournal
	downloads string
	srcDir    string
	// sendPace, if set, is how long each write on the OFFER's stream
	// takes at least: a slow path, on which lanes take most chunks.
	sendPace time.Duration
}

func newRig(t testing.TB) *rig {
	t.Helper()
	downloads := filepath.Join(t.TempDir(), "downloads")
	if err := os.Mkdir(downloads, 0o755); err != nil {
		t.Fatal(err)
	}
	return newRigIn(t, downloads)
}

// newRigIn is newRig with the receiver's downloads folder at downloads.
func newRigIn(t testing.TB, downloads string) *rig {
	t.Helper()
	client, server := quicPair(t)
	journal := newMemJournal()
	root, err := os.OpenRoot(downloads)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return &rig{
		t: t, client: client, server: server, journal: journal,
		recv:      &Receiver{Journal: journal, Downloads: root, Log: slog.New(slog.DiscardHandler)},
		downloads: downloads, srcDir: t.TempDir(),
	}
}

// file writes a source file of n random bytes.
func (r *rig) file(name string, n int) string {
	r.t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	p := filepath.Join(r.srcDir, name)
	if err := os.WriteFile(p, data, 0o640); err != nil {
		r.t.Fatal(err)
	}
	return p
}

type result struct {
	name    string
	sendErr error
	rec     Record
	recvErr error
	sent    int64 // bytes the sender wrote on the OFFER's stream
	lanes   int   // lanes the chunks went on
}

// countingStream counts what the sender writes, and takes at least pace
// for each write.
type countingStream struct {
	*quic.Stream
	n    *atomic.Int64
	pace time.Duration
}

func (c countingStream) Write(b []byte) (int, error) {
	time.Sleep(c.pace)
	n, err := c.Stream.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// transfer runs Send and Receive once, each under its own context.
func (r *rig) transfer(sendCtx, recvCtx context.Context, src Source, progress Progress) result {
	r.t.Helper()
	return r.run(sendCtx, recvCtx, src, progress, -1)
}

// cutStream is the receiver's end of a stream that breaks, as in a crash
// or a lost path, once the receiver has read a given number of bytes.
type cutStream struct {
	*quic.Stream
	left int64
}

var errCut = errors.New("test: stream cut")

func (c *cutStream) Read(b []byte) (int, error) {
	if c.left <= 0 {
		c.CancelRead(streamCancelled)
		c.CancelWrite(streamCancelled)
		return 0, errCut
	}
	n, err := c.Stream.Read(b[:min(int64(len(b)), c.left)])
	c.left -= int64(n)
	return n, err
}

// interrupted runs a transfer whose receiver reads only the first
// cutAfter bytes of the stream, then breaks it: however fast the link,
// the file cannot be complete.
func (r *rig) interrupted(src Source, cutAfter int64) result {
	r.t.Helper()
	return r.run(r.t.Context(), r.t.Context(), src, nil, cutAfter)
}

// run is transfer, with the receiver's stream cut after cutAfter bytes
// when cutAfter is not negative.
func (r *rig) run(sendCtx, recvCtx context.Context, src Source, progress Progress, cutAfter int64) result {
	r.t.Helper()
	stream, err := r.client.OpenStreamSync(sendCtx)
	if err != nil {
		r.t.Fatal(err)
	}
	var res result
	received := make(chan struct{})
	go func() {
		defer close(received)
		s, err := r.server.AcceptStream(recvCtx)
		if err != nil {
			res.recvErr = err
			return
		}
		var rs Stream = s
		if cutAfter >= 0 {
			rs = &cutStream{Stream: s, left: cutAfter}
		}
		res.rec, res.recvErr = r.recv.Receive(recvCtx, testPeer, rs)
	}()
	var sent atomic.Int64
	out, err := Send(sendCtx, countingStream{stream, &sent, r.sendPace}, src, progress)
	res.name, res.sendErr, res.lanes = out.Name, err, out.Lanes
	<-received
	res.sent = sent.Load()
	if src.Lanes == nil && out.Sent > res.sent {
		r.t.Errorf("Send says it wrote %d chunk bytes, the stream saw %d", out.Sent, res.sent)
	}
	return res
}

func (r *rig) send(src Source) result {
	return r.transfer(r.t.Context(), r.t.Context(), src, nil)
}

func newID() ID {
	var id ID
	rand.Read(id[:])
	return id
}

func (r *rig) assertSame(src, name string) {
	r.t.Helper()
	want, err := os.ReadFile(src)
	if err != nil {
		r.t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(r.downloads, name))
	if err != nil {
		r.t.Fatalf("received file: %v", err)
	}
	if !bytes.Equal(got, want) {
		r.t.Fatalf("%s: received %d bytes differ from the %d sent", name, len(got), len(want))
	}
	si, _ := os.Stat(src)
	gi, _ := os.Stat(filepath.Join(r.downloads, name))
	if !gi.ModTime().Equal(si.ModTime()) {
		r.t.Errorf("%s: mtime %v, want the sender's %v", name, gi.ModTime(), si.ModTime())
	}
	if gi.Mode().Perm() != 0o640 {
		r.t.Errorf("%s: mode %v, want the sender's 0640", name, gi.Mode().Perm())
	}
}

// staged lists what is left in the staging folder.
func (r *rig) staged() []string {
	entries, _ := os.ReadDir(filepath.Join(r.downloads, StagingDir))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestSizesArriveIdentical(t *testing.T) {
	const chunk = MinChunkSize
	tests := []struct {
		name string
		size int
		cs   int
	}{
		{"empty", 0, chunk},
		{"one byte", 1, chunk},
		{"chunk-1", chunk - 1, chunk},
		{"chunk", chunk, chunk},
		{"chunk+1", chunk + 1, chunk},
		{"many chunks", 100*chunk + 7, chunk},
		{"default chunks", 5*DefaultChunkSize + 3, 0},
	}
	r := newRig(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := r.file(tt.name+".bin", tt.size)
			var last atomic.Int64
			res := r.transfer(t.Context(), t.Context(), Source{ID: newID(), Path: src, Name: "sizes/" + tt.name + ".bin", ChunkSize: tt.cs},
				func(done, total int64) { last.Store(done) })
			if res.sendErr != nil || res.recvErr != nil {
				t.Fatalf("send: %v; receive: %v", res.sendErr, res.recvErr)
			}
			if res.name != "sizes/"+tt.name+".bin" || res.rec.Final != res.name {
				t.Fatalf("stored as %q (receiver says %q)", res.name, res.rec.Final)
			}
			if last.Load() != int64(tt.size) {
				t.Errorf("progress ended at %d of %d", last.Load(), tt.size)
			}
			r.assertSame(src, res.name)
		})
	}
	if left := r.staged(); len(left) != 0 {
		t.Fatalf("staging folder not empty: %v", left)
	}
}

func TestNamesNeverCollide(t *testing.T) {
	r := newRig(t)
	var names []string
	for range 3 {
		src := r.file("a.txt", 10)
		res := r.send(Source{ID: newID(), Path: src, Name: "a.txt"})
		if res.sendErr != nil {
			t.Fatal(res.sendErr)
		}
		r.assertSame(src, res.name)
		names = append(names, res.name)
	}
	want := []string{"a.txt", "a (1).txt", "a (2).txt"}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("names = %q, want %q", names, want)
		}
	}
}

func TestHostileNamesAreRefusedOrMadeSafe(t *testing.T) {
	r := newRig(t)
	tests := []struct {
		name    string
		want    string // stored name; empty means refused
		refused bool
	}{
		{name: "../escape.txt", refused: true},
		{name: "/etc/passwd", refused: true},
		{name: "a/../../b", refused: true},
		{name: "nul\x00byte", refused: true},
		{name: "ctrl\x07char.txt", want: "ctrl_char.txt"},
		{name: "CON", want: "_CON"},
		{name: ".punchdrop/evil", want: "_.punchdrop/evil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := r.file("x", 5)
			res := r.send(Source{ID: newID(), Path: src, Name: tt.name})
			var te *Error
			if tt.refused {
				if !errors.As(res.sendErr, &te) || te.Code != CodeRefused || !te.Remote || te.Retryable() {
					t.Fatalf("send = %v, want a refusal for good", res.sendErr)
				}
				return
			}
			if res.sendErr != nil || res.name != tt.want {
				t.Fatalf("send = %q, %v; want %q", res.name, res.sendErr, tt.want)
			}
			r.assertSame(src, res.name)
		})
	}
	// Nothing escaped: the downloads folder's parent holds only it.
	entries, _ := os.ReadDir(filepath.Dir(r.downloads))
	if len(entries) != 1 {
		t.Fatalf("something was written beside the downloads folder: %v", entries)
	}
}

// TestResumeSendsOnlyMissingChunks stops a transfer halfway (the
// receiver's side goes away, as in a crash or a lost path), then offers
// the file again: only the missing chunks travel.
func TestResumeSendsOnlyMissingChunks(t *testing.T) {
	r := newRig(t)
	const size = 64 * MinChunkSize
	src := r.file("big.bin", size)
	id := newID()
	first := r.interrupted(Source{ID: id, Path: src, Name: "big.bin", ChunkSize: MinChunkSize}, size/2)
	if first.sendErr == nil || first.recvErr == nil {
		t.Fatalf("interrupted transfer: send %v, receive %v", first.sendErr, first.recvErr)
	}
	if !Retryable(first.sendErr) {
		t.Fatalf("an interruption must leave the file queued: %v", first.sendErr)
	}
	if _, err := os.Stat(filepath.Join(r.downloads, "big.bin")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a half-received file appeared under its final name: %v", err)
	}
	second := r.send(Source{ID: id, Path: src, Name: "big.bin", ChunkSize: MinChunkSize})
	if second.sendErr != nil {
		t.Fatal(second.sendErr)
	}
	r.assertSame(src, second.name)
	if second.sent > size/2+4*MinChunkSize {
		t.Fatalf("resume sent %d bytes of a %d-byte file that was half there", second.sent, size)
	}
	t.Logf("first attempt sent %d bytes, resume %d", first.sent, second.sent)
}

func TestChangedSourceStartsOver(t *testing.T) {
	r := newRig(t)
	const size = 32 * MinChunkSize
	src := r.file("doc.bin", size)
	id := newID()
	r.interrupted(Source{ID: id, Path: src, Name: "doc.bin", ChunkSize: MinChunkSize}, size/2)
	// A new version, same size, a later mtime.
	src = r.file("doc.bin", size)
	os.Chtimes(src, time.Now(), time.Now().Add(time.Minute))
	res := r.send(Source{ID: id, Path: src, Name: "doc.bin", ChunkSize: MinChunkSize})
	if res.sendErr != nil {
		t.Fatal(res.sendErr)
	}
	r.assertSame(src, res.name)
}

func TestSourceModifiedMidTransfer(t *testing.T) {
	r := newRig(t)
	src := r.file("live.log", 64*MinChunkSize)
	var once atomic.Bool
	res := r.transfer(t.Context(), t.Context(), Source{ID: newID(), Path: src, Name: "live.log", ChunkSize: MinChunkSize},
		func(done, total int64) {
			if done > 0 && once.CompareAndSwap(false, true) {
				f, _ := os.OpenFile(src, os.O_APPEND|os.O_WRONLY, 0)
				f.WriteString("one more line\n")
				f.Close()
			}
		})
	var te *Error
	if !errors.As(res.sendErr, &te) || te.Code != CodeSourceChanged || !te.Retryable() {
		t.Fatalf("send = %v, want source changed", res.sendErr)
	}
	if _, err := os.Stat(filepath.Join(r.downloads, "live.log")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a mixed version was delivered: %v", err)
	}
	again := r.send(Source{ID: newID(), Path: src, Name: "live.log", ChunkSize: MinChunkSize})
	if again.sendErr != nil {
		t.Fatal(again.sendErr)
	}
	r.assertSame(src, again.name)
}

func TestRepeatedOfferOfReceivedFile(t *testing.T) {
	r := newRig(t)
	src := r.file("once.txt", 100)
	id := newID()
	first := r.send(Source{ID: id, Path: src, Name: "once.txt"})
	second := r.send(Source{ID: id, Path: src, Name: "once.txt"})
	if first.sendErr != nil || second.sendErr != nil || second.name != first.name {
		t.Fatalf("first %q %v, second %q %v", first.name, first.sendErr, second.name, second.sendErr)
	}
	entries, _ := os.ReadDir(r.downloads)
	if len(entries) != 2 { // once.txt and the staging folder
		t.Fatalf("a repeated offer stored the file again: %v", entries)
	}
}

// rawSender opens a stream to a Receiver for a test that plays the
// sender by hand; done yields what Receive returned.
func (r *rig) rawSender() (*quic.Stream, <-chan error) {
	stream, err := r.client.OpenStreamSync(r.t.Context())
	if err != nil {
		r.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		s, err := r.server.AcceptStream(r.t.Context())
		if err == nil {
			_, err = r.recv.Receive(r.t.Context(), testPeer, s)
		}
		done <- err
	}()
	return stream, done
}

// TestCorruptChunksAreNaked plays a sender whose chunks never match their
// hashes: the receiver asks again a bounded number of times, then aborts.
func TestCorruptChunksAreNaked(t *testing.T) {
	stream, done := newRig(t).rawSender()
	offer := Offer{ID: newID(), Size: 10, ChunkSize: MinChunkSize, ModTime: time.Now(), Mode: 0o644, Name: "bad.bin"}
	if err := WriteFrame(stream, offer); err != nil {
		t.Fatal(err)
	}
	in := NewReader(stream)
	if f, err := in.Next(); err != nil || f.Type() != TypeAccept {
		t.Fatalf("answer to offer: %v %v", f, err)
	}
	naks := 0
	for {
		if err := WriteChunk(stream, Chunk{Index: 0, Data: make([]byte, 10)}); err != nil {
			break
		}
		f, err := in.Next()
		if err != nil {
			t.Fatalf("after %d NAKs: %v", naks, err)
		}
		if a, ok := f.(Abort); ok {
			if a.Code != CodeCorrupt {
				t.Fatalf("abort %+v, want corrupt", a)
			}
			break
		}
		if _, ok := f.(Nak); !ok {
			t.Fatalf("answer to a corrupt chunk: %s", f.Type())
		}
		naks++
	}
	if naks != maxChunkRetries {
		t.Fatalf("%d NAKs before the abort, want %d", naks, maxChunkRetries)
	}
	var te *Error
	if err := <-done; !errors.As(err, &te) || te.Code != CodeCorrupt {
		t.Fatalf("receiver: %v", err)
	}
}

func TestGarbageOnTheStreamIsRefused(t *testing.T) {
	stream, done := newRig(t).rawSender()
	stream.Write([]byte{Version, 99, 0, 0, 0, 0})
	f, err := NewReader(stream).Next()
	if err != nil || f.Type() != TypeAbort {
		t.Fatalf("answer to garbage: %v, %v", f, err)
	}
	if err := <-done; !errors.Is(err, ErrMalformed) {
		t.Fatalf("receiver: %v", err)
	}
}

func TestCleanStaging(t *testing.T) {
	r := newRig(t)
	st := r.journal
	now := time.Now()
	staging := func(id string) string { return StagingDir + "/" + id + ".part" }
	records := []Record{
		{ID: "fresh", Peer: testPeer, Name: "a", Staging: staging("fresh"), State: Receiving, Updated: now.Add(-time.Hour)},
		{ID: "stale", Peer: testPeer, Name: "b", Staging: staging("stale"), State: Receiving, Updated: now.Add(-StaleAfter - time.Hour)},
		{ID: "olddone", Peer: testPeer, Name: "c", Staging: staging("olddone"), State: Received, Updated: now.Add(-StaleAfter - time.Hour)},
		{ID: "newdone", Peer: testPeer, Name: "d", Staging: staging("newdone"), State: Received, Updated: now},
	}
	os.MkdirAll(filepath.Join(r.downloads, StagingDir), 0o700)
	for _, rec := range records {
		if err := st.StartIncoming(rec); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"fresh", "stale", "orphan"} {
		os.WriteFile(filepath.Join(r.downloads, staging(name)), []byte("x"), 0o600)
	}
	if err := r.recv.Clean(now); err != nil {
		t.Fatal(err)
	}
	if got := r.staged(); len(got) != 1 || got[0] != "fresh.part" {
		t.Fatalf("staging folder after Clean: %v, want only fresh.part", got)
	}
	var ids []string
	for _, rec := range st.all() {
		ids = append(ids, rec.ID)
	}
	// Finished records are the journal's history to prune, not Clean's.
	if want := []string{"fresh", "newdone", "olddone"}; !slices.Equal(ids, want) {
		t.Fatalf("records after Clean: %v, want %v", ids, want)
	}
}

// brokenWrites is the receiver's end of a stream whose write side breaks
// after a number of writes, as when the sender resets the stream or the
// path goes while chunks are still on their way.
type brokenWrites struct {
	Stream
	mu   sync.Mutex
	left int // writes that still work
}

var errWriteCut = errors.New("test: write side cut")

func (b *brokenWrites) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.left <= 0 {
		return 0, errWriteCut
	}
	b.left--
	return b.Stream.Write(p)
}

// recordedChunks counts the chunks the store holds for a transfer.
func (r *rig) recordedChunks(id ID) int {
	r.t.Helper()
	n := 0
	err := r.journal.IncomingChunks(testPeer, id.String(), func(uint32, []byte) error { n++; return nil })
	if err != nil && !errors.Is(err, ErrNoRecord) {
		r.t.Fatal(err)
	}
	return n
}

// TestFailedAckStillRecordsChunks: once the receiver cannot write an ACK,
// the chunks that keep arriving are still made durable and recorded, so
// a resume does not send them again. The first ACK fails after the first
// chunk is recorded; the other chunks are sent only then, so they cannot
// share its batch.
func TestFailedAckStillRecordsChunks(t *testing.T) {
	r := newRig(t)
	h := r.hostileWrapped(func(s Stream) Stream { return &brokenWrites{Stream: s, left: 1} }) // the ACCEPT only
	const n = 16
	data := make([]byte, n*MinChunkSize)
	rand.Read(data)
	o := Offer{ID: newID(), Size: uint64(len(data)), ChunkSize: MinChunkSize, ModTime: time.Now(), Mode: 0o644, Name: "acked.bin"}
	s, answer := h.offer(o)
	if _, ok := answer.(Accept); !ok {
		t.Fatalf("answer to the offer: %+v", answer)
	}
	var hashes []Hash
	for i := range n {
		chunk := data[i*MinChunkSize : (i+1)*MinChunkSize]
		hashes = append(hashes, sha256.Sum256(chunk))
		if err := s.send(Chunk{Index: uint32(i), Hash: hashes[i], Data: chunk}); err != nil {
			t.Logf("chunk %d: %v", i, err) // the receiver may have stopped reading
		}
		if i == 0 {
			testutil.WaitFor(t, hostileTimeout, "the first chunk to be recorded", func() bool { return r.recordedChunks(o.ID) == 1 })
		}
	}
	s.send(End{Root: Root(hashes)})
	if res := h.result(); !errors.Is(res.err, errWriteCut) {
		t.Fatalf("receiver: %v, want the failed ACK", res.err)
	}
	if got := r.recordedChunks(o.ID); got != n {
		t.Fatalf("the store holds %d of the %d chunks written after the ACK failed", got, n)
	}
}

// Progress moves while a chunk is on its way, on both sides, rather
// than once per chunk: a 1 MiB chunk takes over a minute over 8 lanes
// of a 1 Mbit/s link. It never passes the file's size, and ends there.
func TestProgressMovesWithinAChunk(t *testing.T) {
	r := newRig(t)
	const size = 2 * DefaultChunkSize
	var mu sync.Mutex
	var sent, received []int64
	r.recv.Progress = func(_ Record, done int64) {
		mu.Lock()
		received = append(received, done)
		mu.Unlock()
	}
	src := r.file("progress.bin", size)
	res := r.transfer(t.Context(), t.Context(), Source{ID: newID(), Path: src, Name: "progress.bin"},
		func(done, total int64) {
			mu.Lock()
			sent = append(sent, done)
			mu.Unlock()
		})
	if res.sendErr != nil || res.recvErr != nil {
		t.Fatalf("send: %v; receive: %v", res.sendErr, res.recvErr)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, side := range []struct {
		name    string
		reports []int64
	}{{"sender", sent}, {"receiver", received}} {
		below := map[int64]bool{} // distinct figures short of a chunk's end
		for _, d := range side.reports {
			if d < 0 || d > size {
				t.Errorf("%s: progress %d out of 0..%d", side.name, d, size)
			}
			if d%DefaultChunkSize != 0 {
				below[d] = true
			}
		}
		if len(below) < 8 {
			t.Errorf("%s: %d figures within chunks (%v); want the count to move piece by piece", side.name, len(below), side.reports)
		}
		if n := len(side.reports); n == 0 || side.reports[n-1] != size {
			t.Errorf("%s: progress ended at %v, want %d", side.name, side.reports, size)
		}
	}
}
