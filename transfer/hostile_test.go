package transfer

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// hostileTimeout bounds one wait for the receiver in a hostile test: it
// answers on loopback in milliseconds, so seconds mean it hangs.
const hostileTimeout = 10 * time.Second

// hostilePeer is a configured peer that speaks the transfer protocol
// with lies in it. It writes every frame by hand, without the checks
// WriteFrame makes, so it can offer what no honest sender would (absurd
// sizes, sizes near 2^64, names with bidi characters), send CHUNK frames
// larger than the chunk size it offered or with wrong indexes, and flood
// the receiver with offers. Each stream it opens is served by the rig's
// Receiver on a goroutine of its own, as the agent serves a peer.
type hostilePeer struct {
	t    testing.TB
	r    *rig
	wg   sync.WaitGroup
	done chan received // what each Receive returned, in the order they ended
}

// received is what one Receive returned.
type received struct {
	rec Record
	err error
}

// hostile starts serving the rig's connection for a hostile peer.
func (r *rig) hostile() *hostilePeer {
	r.t.Helper()
	return r.hostileWrapped(nil)
}

// hostileWrapped is hostile with the receiver's end of each stream
// wrapped by wrap, when not nil.
func (r *rig) hostileWrapped(wrap func(Stream) Stream) *hostilePeer {
	r.t.Helper()
	h := &hostilePeer{t: r.t, r: r, done: make(chan received, 1024)}
	ctx := r.t.Context()
	h.wg.Go(func() {
		for {
			s, err := r.server.AcceptStream(ctx)
			if err != nil {
				return
			}
			var rs Stream = s
			if wrap != nil {
				rs = wrap(s)
			}
			h.wg.Go(func() {
				rec, err := r.recv.Receive(ctx, testPeer, rs)
				h.done <- received{rec, err}
			})
		}
	})
	// The test's context ends before cleanups run: every Receive resets
	// its stream and returns.
	r.t.Cleanup(h.wg.Wait)
	return h
}

// result waits for the next Receive to end.
func (h *hostilePeer) result() received {
	h.t.Helper()
	select {
	case res := <-h.done:
		return res
	case <-time.After(hostileTimeout):
		h.t.Fatal("the receiver did not end its side of the transfer")
		return received{}
	}
}

// hostileStream is one stream of a hostile peer.
type hostileStream struct {
	*quic.Stream
	t  testing.TB
	in *Reader
}

// open opens a stream; the receiver sees it with the first frame.
func (h *hostilePeer) open() *hostileStream {
	h.t.Helper()
	s, err := h.r.client.OpenStreamSync(h.t.Context())
	if err != nil {
		h.t.Fatal(err)
	}
	return &hostileStream{Stream: s, t: h.t, in: NewReader(s)}
}

// offer opens a stream, offers o on it and returns the receiver's answer.
func (h *hostilePeer) offer(o Offer) (*hostileStream, Frame) {
	h.t.Helper()
	s := h.open()
	if err := s.send(o); err != nil {
		h.t.Fatalf("offer %q: %v", o.Name, err)
	}
	f, err := s.next()
	if err != nil {
		h.t.Fatalf("answer to the offer of %q: %v", o.Name, err)
	}
	return s, f
}

// send writes f as it is, whatever the limits of the format.
func (s *hostileStream) send(f Frame) error {
	payload := f.appendPayload(nil)
	b := binary.BigEndian.AppendUint32([]byte{Version, byte(f.Type())}, uint32(len(payload)))
	_, err := s.Write(append(b, payload...))
	return err
}

// header writes a frame header that claims n bytes of payload, and
// nothing else.
func (s *hostileStream) header(t Type, n uint32) error {
	_, err := s.Write(binary.BigEndian.AppendUint32([]byte{Version, byte(t)}, n))
	return err
}

// next reads the receiver's next frame, waiting at most hostileTimeout.
func (s *hostileStream) next() (Frame, error) {
	s.SetReadDeadline(time.Now().Add(hostileTimeout))
	defer s.SetReadDeadline(time.Time{})
	return s.in.Next()
}

// deliver offers data under o (whose Size and ChunkSize it fills in if
// zero) and sends it all, as an honest sender would: whatever lies o
// carries are in the offer only. It returns the receiver's END_ACK, or
// the frame or error that stopped it.
func (h *hostilePeer) deliver(o Offer, data []byte) (Frame, error) {
	h.t.Helper()
	if o.Size == 0 {
		o.Size = uint64(len(data))
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = MinChunkSize
	}
	s, answer := h.offer(o)
	if _, ok := answer.(Accept); !ok {
		return answer, nil
	}
	var hashes []Hash
	for i := range o.Chunks() {
		chunk := data[i*int(o.ChunkSize) : i*int(o.ChunkSize)+o.ChunkLen(i)]
		hashes = append(hashes, sha256.Sum256(chunk))
		if err := s.send(Chunk{Index: uint32(i), Hash: hashes[i], Data: chunk}); err != nil {
			return nil, fmt.Errorf("chunk %d: %w", i, err)
		}
	}
	if err := s.send(End{Root: Root(hashes)}); err != nil {
		return nil, fmt.Errorf("end: %w", err)
	}
	for {
		f, err := s.next()
		if _, ack := f.(Ack); err != nil || !ack {
			return f, err
		}
	}
}

// refusal returns the code of a REJECT or ABORT.
func refusal(f Frame) (Code, bool) {
	switch f := f.(type) {
	case Reject:
		return f.Code, true
	case Abort:
		return f.Code, true
	}
	return 0, false
}

// mustRefuse fails the test unless f refuses with code.
func mustRefuse(t testing.TB, what string, f Frame, code Code) {
	t.Helper()
	if got, ok := refusal(f); !ok || got != code {
		t.Fatalf("%s: answer %T %+v, want a refusal with %s", what, f, f, code)
	}
}

// incoming lists the receiver's incoming records.
func (r *rig) incoming() []Record {
	r.t.Helper()
	return r.journal.all()
}

// mustBeClean fails the test if the receiver holds any record or staged
// file.
func (r *rig) mustBeClean(what string) {
	r.t.Helper()
	if recs := r.incoming(); len(recs) != 0 {
		r.t.Fatalf("%s: %d incoming records left, the first %+v", what, len(recs), recs[0])
	}
	if left := r.staged(); len(left) != 0 {
		r.t.Fatalf("%s: staging folder holds %v", what, left)
	}
}

// TestHostileOfferSizes offers sizes no file has: each is refused as a
// protocol error before anything is recorded or reserved.
func TestHostileOfferSizes(t *testing.T) {
	r := newRig(t)
	h := r.hostile()
	tests := []struct {
		name  string
		size  uint64
		chunk uint32
	}{
		{"2^64-1", 1<<64 - 1, MinChunkSize},
		{"2^64-1, largest chunks", 1<<64 - 1, MaxChunkSize},
		{"2^64-chunk+1", 1<<64 - MinChunkSize + 1, MinChunkSize},
		{"2^63", 1 << 63, MaxChunkSize},
		{"one byte too many chunks", MaxChunks*MinChunkSize + 1, MinChunkSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, answer := h.offer(Offer{ID: newID(), Size: tt.size, ChunkSize: tt.chunk, ModTime: time.Now(), Mode: 0o644, Name: "huge.bin"})
			mustRefuse(t, "offer of "+tt.name+" bytes", answer, CodeProtocol)
			if res := h.result(); !errors.Is(res.err, ErrMalformed) {
				t.Fatalf("receiver: %v, want a malformed offer", res.err)
			}
			r.mustBeClean(tt.name)
		})
	}
}

// TestHostileNameAndModeAreDefused offers an executable under a name
// that hides its type with a right-to-left override: it arrives under a
// name that shows what it is, and cannot be run.
func TestHostileNameAndModeAreDefused(t *testing.T) {
	r := newRig(t)
	h := r.hostile()
	tests := []struct {
		name string
		mode os.FileMode
		want string
		perm os.FileMode
	}{
		{"invoice\u202Ehs.pdf", 0o755, "invoice_hs.pdf", 0o644},
		{"setup\u2066.exe\u2069.txt", 0o777, "setup_.exe_.txt", 0o644},
		{"run.sh", 0o700, "run.sh", 0o600},
		{"notes.txt", 0o640, "notes.txt", 0o640},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			data := []byte("#!/bin/sh\necho hi\n")
			f, err := h.deliver(Offer{ID: newID(), ModTime: time.Now(), Mode: tt.mode, Name: tt.name}, data)
			end, ok := f.(EndAck)
			if err != nil || !ok || end.Name != tt.want {
				t.Fatalf("delivery: %T %+v, %v; want END_ACK %q", f, f, err, tt.want)
			}
			h.result()
			fi, err := os.Stat(filepath.Join(r.downloads, filepath.FromSlash(tt.want)))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tt.perm {
				t.Fatalf("mode %v of a file sent with %v, want %v", fi.Mode().Perm(), tt.mode, tt.perm)
			}
		})
	}
}

// TestHostileAbortReasonIsCleaned: a peer's abort reason reaches our
// logs, status and terminal; its escapes and bidi tricks are cleaned on
// receipt.
func TestHostileAbortReasonIsCleaned(t *testing.T) {
	r := newRig(t)
	h := r.hostile()
	s, answer := h.offer(Offer{ID: newID(), Size: MinChunkSize, ChunkSize: MinChunkSize, ModTime: time.Now(), Mode: 0o644, Name: "a.txt"})
	if _, ok := answer.(Accept); !ok {
		t.Fatalf("answer %T, want ACCEPT", answer)
	}
	if err := s.send(Abort{Code: CodeCancelled, Reason: "bye\x1b]0;owned\x07\n\u202Eevil"}); err != nil {
		t.Fatal(err)
	}
	var te *Error
	if res := h.result(); !errors.As(res.err, &te) || !te.Remote {
		t.Fatalf("receiver: %v, want the peer's abort", res.err)
	}
	if want := "bye\uFFFD]0;owned\uFFFD\n\uFFFDevil"; te.Reason != want {
		t.Fatalf("reason %q, want %q", te.Reason, want)
	}
}

// TestHostileEagerFiles sends small files whole, OFFER, CHUNK and END at
// once, with lies in them (version 3 lets a sender write them before
// the ACCEPT): an offer refused leaves its chunk unread and nothing
// behind; a chunk larger than the offer said is refused from its header
// once the offer is admitted; and a NAKed chunk followed by ENDs instead
// of the chunk again ends the transfer. Nothing reaches downloads.
func TestHostileEagerFiles(t *testing.T) {
	data := []byte("0123456789")
	good := Chunk{Index: 0, Hash: sha256.Sum256(data), Data: data}
	end := End{Root: Root([]Hash{sha256.Sum256(data)})}
	tests := []struct {
		name   string
		offer  Offer
		frames []Frame
		claim  uint32 // if not 0, a CHUNK header claiming this payload follows
		want   []Type // the receiver's answers, the last a refusal
		code   Code
		clean  bool // no record left either
	}{
		{
			name:   "refused name",
			offer:  Offer{Name: "../escape.txt"},
			frames: []Frame{good, end},
			want:   []Type{TypeAbort},
			code:   CodeRefused,
			clean:  true,
		},
		{
			name:  "refused name, then a chunk header of the largest size",
			offer: Offer{Name: "../escape.txt"},
			claim: chunkFixedLen + MaxChunkSize,
			want:  []Type{TypeAbort},
			code:  CodeRefused,
			clean: true,
		},
		{
			name:   "chunk larger than offered",
			offer:  Offer{Name: "big.txt"},
			frames: []Frame{Chunk{Index: 0, Data: make([]byte, MinChunkSize)}, end},
			want:   []Type{TypeAccept, TypeAbort},
			code:   CodeProtocol,
		},
		{
			name:   "ENDs instead of the NAKed chunk",
			offer:  Offer{Name: "naked.txt"},
			frames: []Frame{Chunk{Index: 0, Data: data}, end, end, end},
			want:   []Type{TypeAccept, TypeNak, TypeAbort},
			code:   CodeProtocol,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			h := r.hostile()
			o := tt.offer
			o.ID, o.Size, o.ChunkSize, o.ModTime, o.Mode = newID(), uint64(len(data)), MinChunkSize, time.Now(), 0o644
			s := h.open()
			for _, f := range append([]Frame{o}, tt.frames...) {
				if err := s.send(f); err != nil {
					break // the receiver stopped reading: its answer says why
				}
			}
			if tt.claim != 0 {
				s.header(TypeChunk, tt.claim)
			}
			var last Frame
			for k, want := range tt.want {
				f, err := s.next()
				if err != nil || f.Type() != want {
					t.Fatalf("answer %d: %v, %v; want %s", k, f, err, want)
				}
				last = f
			}
			mustRefuse(t, "the last answer", last, tt.code)
			if res := h.result(); res.err == nil {
				t.Fatal("the receiver took the file")
			}
			if entries, _ := os.ReadDir(r.downloads); len(entries) > 1 || len(entries) == 1 && entries[0].Name() != StagingDir {
				t.Fatalf("downloads holds %v", entries)
			}
			if tt.clean {
				r.mustBeClean(tt.name)
			}
		})
	}
}
