package transfer

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleFrames() []Frame {
	have := NewBitmap(11)
	have.Set(0)
	have.Set(10)
	return []Frame{
		Offer{ID: ID{1, 2, 3}, Size: 3<<20 + 5, ChunkSize: DefaultChunkSize, ModTime: time.Unix(0, 1732512345123456789), Mode: 0o644, Name: "photos/été.jpg"},
		Accept{Have: have},
		Accept{Have: NewBitmap(0)},
		Reject{Code: CodeNoSpace, Reason: "needs 3.0 MiB, 1.2 MiB free"},
		Chunk{Index: 7, Hash: Hash{9}, Data: []byte("some data")},
		Chunk{Index: 0, Data: []byte{}},
		Ack{Indexes: []uint32{1, 2, 3, 100}},
		Nak{Index: 4, Reason: "hash mismatch"},
		End{Root: Hash{0xaa, 0xbb}},
		EndAck{Name: "photos/été (1).jpg"},
		Abort{Code: CodeSourceChanged, Reason: "size changed"},
		Lane{ID: ID{7}},
	}
}

// eagerStream is what a sender of version 3 writes for a small file
// before any answer: OFFER, CHUNK and END (eager.go).
func eagerStream(f *testing.F) []byte {
	data := []byte("a small file")
	var b []byte
	for _, fr := range []Frame{
		Offer{ID: ID{4}, Size: uint64(len(data)), ChunkSize: DefaultChunkSize, ModTime: time.Unix(0, 1732512345123456789), Mode: 0o644, Name: "notes.txt"},
		Chunk{Index: 0, Hash: sum(Version, data), Data: data},
		End{Root: root(Version, []Hash{sum(Version, data)})},
	} {
		var err error
		if b, err = AppendFrame(b, fr); err != nil {
			f.Fatal(err)
		}
	}
	return b
}

func TestFramesRoundTrip(t *testing.T) {
	var stream bytes.Buffer
	for _, f := range sampleFrames() {
		if err := WriteFrame(&stream, f); err != nil {
			t.Fatalf("write %s: %v", f.Type(), err)
		}
	}
	r := NewReader(&stream)
	for _, want := range sampleFrames() {
		got, err := r.Next()
		if err != nil {
			t.Fatalf("read %s: %v", want.Type(), err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v", want.Type(), got, want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestDecodeRejects(t *testing.T) {
	frame := func(f Frame) []byte {
		b, err := AppendFrame(nil, f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	header := func(v, typ byte, n uint32) []byte {
		return binary.BigEndian.AppendUint32([]byte{v, typ}, n)
	}
	offer := Offer{ID: ID{1}, Size: 10, ChunkSize: MinChunkSize, Mode: 0o600, Name: "a"}
	withPayload := func(typ Type, payload []byte) []byte {
		return append(header(Version, byte(typ), uint32(len(payload))), payload...)
	}
	offerPayload := func(mut func(o *Offer)) []byte {
		o := offer
		mut(&o)
		return withPayload(TypeOffer, o.appendPayload(nil))
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"truncated header", []byte{Version, 1, 0}, io.ErrUnexpectedEOF},
		{"truncated payload", frame(offer)[:20], io.ErrUnexpectedEOF},
		{"newer version", header(Version+1, byte(TypeEnd), HashLen), ErrVersion},
		{"version zero", header(0, byte(TypeEnd), HashLen), ErrVersion},
		{"lane in version 1", header(1, byte(TypeLane), 16), ErrMalformed},
		{"unknown type", header(Version, 99, 0), ErrMalformed},
		{"type zero", header(Version, 0, 0), ErrMalformed},
		{"oversized chunk", header(Version, byte(TypeChunk), chunkFixedLen+MaxChunkSize+1), ErrTooLarge},
		{"oversized end", header(Version, byte(TypeEnd), HashLen+1), ErrTooLarge},
		{"huge length", header(Version, byte(TypeOffer), 0xffffffff), ErrTooLarge},
		{"short end", withPayload(TypeEnd, make([]byte, HashLen-1)), ErrMalformed},
		{"trailing bytes", withPayload(TypeEndAck, append(appendString(nil, "a"), 0)), ErrMalformed},
		{"empty name", offerPayload(func(o *Offer) { o.Name = "" }), ErrMalformed},
		{"chunk size too small", offerPayload(func(o *Offer) { o.ChunkSize = MinChunkSize - 1 }), ErrMalformed},
		{"chunk size too big", offerPayload(func(o *Offer) { o.ChunkSize = MaxChunkSize + 1 }), ErrMalformed},
		{"too many chunks", offerPayload(func(o *Offer) { o.Size = MinChunkSize*MaxChunks + 1 }), ErrMalformed},
		// size+chunk-1 wraps for these: counted that way, they had 0 chunks.
		{"size 2^64-1", offerPayload(func(o *Offer) { o.Size = 1<<64 - 1 }), ErrMalformed},
		{"size 2^64-chunk+1", offerPayload(func(o *Offer) { o.Size = 1<<64 - MinChunkSize + 1 }), ErrMalformed},
		{"size 2^63", offerPayload(func(o *Offer) { o.Size, o.ChunkSize = 1<<63, MaxChunkSize }), ErrMalformed},
		{"mode with type bits", func() []byte {
			b := offerPayload(func(*Offer) {})
			b[headerLen+36] = 0x80 // the directory bit
			return b
		}(), ErrMalformed},
		{"name not UTF-8", offerPayload(func(o *Offer) { o.Name = "a\xff" }), ErrMalformed},
		{"string length past end", withPayload(TypeEndAck, []byte{0, 9, 'a'}), ErrMalformed},
		{"bitmap padding bits", withPayload(TypeAccept, []byte{0, 0, 0, 3, 0xff}), ErrMalformed},
		{"bitmap too short", withPayload(TypeAccept, []byte{0, 0, 0, 9, 0xff}), ErrMalformed},
		{"bitmap too long", withPayload(TypeAccept, []byte{0, 0, 0, 8, 0xff, 0}), ErrMalformed},
		{"bitmap too many chunks", withPayload(TypeAccept, []byte{0xff, 0xff, 0xff, 0xff}), ErrMalformed},
		{"empty ack", withPayload(TypeAck, []byte{0, 0, 0, 0}), ErrMalformed},
		{"ack count past end", withPayload(TypeAck, []byte{0, 0, 0, 2, 0, 0, 0, 1}), ErrMalformed},
		{"ack count too big", withPayload(TypeAck, []byte{0, 0, 0x10, 1}), ErrMalformed},
		{"short chunk", withPayload(TypeChunk, make([]byte, chunkFixedLen-1)), ErrMalformed},
		{"reason too long", withPayload(TypeAbort, append([]byte{1, 0xff, 0xff}, make([]byte, maxReasonLen)...)), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(tt.in)).Next()
			if !errors.Is(err, tt.want) {
				t.Fatalf("Next = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestStreamKeepsItsVersion: a stream speaks the version of its first
// frame; a frame of another version after it is refused.
func TestStreamKeepsItsVersion(t *testing.T) {
	v1, err := appendFrame(nil, 1, End{})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := appendFrame(nil, 2, End{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		first uint8
		in    []byte
	}{{"2 then 1", 2, append(v2, v1...)}, {"1 then 2", 1, append(v1, v2...)}} {
		r := NewReader(bytes.NewReader(tt.in))
		if _, err := r.Next(); err != nil || r.Version() != tt.first {
			t.Fatalf("%s: first frame: %v, version %d", tt.name, err, r.Version())
		}
		if _, err := r.Next(); !errors.Is(err, ErrVersion) {
			t.Fatalf("%s: second frame: %v, want ErrVersion", tt.name, err)
		}
	}
	if _, err := appendFrame(nil, 1, Lane{}); !errors.Is(err, ErrVersion) {
		t.Fatalf("a LANE in version 1 encoded: %v", err)
	}
}

// TestReaderLimits: a frame above the limit set for its type is refused
// from its header, without reading its payload; other types keep theirs.
func TestReaderLimits(t *testing.T) {
	chunk := Chunk{Index: 1, Data: make([]byte, 100)}
	tests := []struct {
		name  string
		typ   Type
		limit int
		frame Frame
		want  error
	}{
		{"chunk at the limit", TypeChunk, chunkFixedLen + 100, chunk, nil},
		{"chunk above the limit", TypeChunk, chunkFixedLen + 99, chunk, ErrTooLarge},
		{"chunk, none expected", TypeChunk, 0, chunk, ErrTooLarge},
		{"accept, none expected", TypeAccept, 0, Accept{Have: NewBitmap(1)}, ErrTooLarge},
		{"limit above the format's", TypeChunk, 1 << 30, chunk, nil},
		{"other type untouched", TypeChunk, 0, End{}, nil},
		{"type out of range", Type(200), 0, chunk, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteFrame(&b, tt.frame); err != nil {
				t.Fatal(err)
			}
			r := NewReader(&b)
			r.SetLimit(tt.typ, tt.limit)
			f, err := r.Next()
			if !errors.Is(err, tt.want) || err == nil && !reflect.DeepEqual(f, tt.frame) {
				t.Fatalf("Next = %+v, %v; want %v", f, err, tt.want)
			}
			if err != nil && cap(r.buf) != 0 {
				t.Fatalf("a refused frame made the reader allocate %d bytes", cap(r.buf))
			}
		})
	}
	if got := NewReader(nil).limits[TypeChunk]; got != chunkFixedLen+MaxChunkSize {
		t.Fatalf("default CHUNK limit %d", got)
	}
}

func TestEncodeRefusesWhatDecodeWould(t *testing.T) {
	tests := []Frame{
		Offer{ID: ID{1}, Size: 1, ChunkSize: 1, Name: "a"},
		Offer{ID: ID{1}, Size: 1, ChunkSize: MinChunkSize, Name: strings.Repeat("a", MaxNameLen+1)},
		Ack{},
		EndAck{},
		Chunk{Data: make([]byte, MaxChunkSize+1)},
	}
	for _, f := range tests {
		if err := WriteFrame(io.Discard, f); err == nil {
			t.Errorf("WriteFrame(%s) accepted a frame the decoder refuses", f.Type())
		}
	}
}

func TestOfferChunks(t *testing.T) {
	tests := []struct {
		size      uint64
		chunks    int
		lastChunk int
	}{
		{0, 0, 0},
		{1, 1, 1},
		{MinChunkSize - 1, 1, MinChunkSize - 1},
		{MinChunkSize, 1, MinChunkSize},
		{MinChunkSize + 1, 2, 1},
		{5 * MinChunkSize, 5, MinChunkSize},
		{MaxChunks * MinChunkSize, MaxChunks, MinChunkSize},
		// Beyond MaxChunks the count stops at MaxChunks+1 (refused), and
		// never wraps to a small number.
		{MaxChunks*MinChunkSize + 1, MaxChunks + 1, 0},
		{1<<64 - 1, MaxChunks + 1, 0},
		{1<<64 - MinChunkSize + 1, MaxChunks + 1, 0},
	}
	for _, tt := range tests {
		o := Offer{Size: tt.size, ChunkSize: MinChunkSize}
		if got := o.Chunks(); got != tt.chunks {
			t.Errorf("size %d: Chunks = %d, want %d", tt.size, got, tt.chunks)
		}
		if tt.chunks > 0 && tt.chunks <= MaxChunks {
			if got := o.ChunkLen(tt.chunks - 1); got != tt.lastChunk {
				t.Errorf("size %d: last ChunkLen = %d, want %d", tt.size, got, tt.lastChunk)
			}
		}
	}
}

func TestBitmap(t *testing.T) {
	m := NewBitmap(13)
	for _, i := range []int{0, 5, 12, 12, -1, 13} {
		m.Set(i)
	}
	if m.Count() != 3 || !m.Has(0) || !m.Has(5) || !m.Has(12) || m.Has(1) || m.Has(13) || m.Has(-1) {
		t.Fatalf("bitmap = %08b, count %d", m.bits, m.Count())
	}
}

// FuzzReader feeds arbitrary bytes to the frame reader: it must never
// panic, every frame it accepts must encode back to a frame that
// decodes to the same value, and every offer it accepts must have a
// chunk count that covers its size exactly (checkOffer).
func FuzzReader(f *testing.F) {
	for _, fr := range sampleFrames() {
		b, err := AppendFrame(nil, fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add(eagerStream(f))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		for {
			fr, err := r.Next()
			if err != nil {
				return
			}
			if o, ok := fr.(Offer); ok {
				checkOffer(t, o)
			}
			b, err := AppendFrame(nil, fr)
			if err != nil {
				t.Fatalf("re-encode %s %+v: %v", fr.Type(), fr, err)
			}
			again, err := NewReader(bytes.NewReader(b)).Next()
			if err != nil || !reflect.DeepEqual(again, fr) {
				t.Fatalf("%s does not round-trip: %+v vs %+v (%v)", fr.Type(), again, fr, err)
			}
		}
	})
}

// FuzzReaderStreamed feeds arbitrary bytes to a Reader that streams
// chunks, beside one that reads them whole: both must see the same
// frames, the data ReadData returns in pieces must be the chunk's, a
// chunk's length must keep within the Reader's limit, and skipping
// data must leave the stream at the next frame.
func FuzzReaderStreamed(f *testing.F) {
	for _, fr := range sampleFrames() {
		b, err := AppendFrame(nil, fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(7))
		f.Add(b[:len(b)/2], uint8(0))
	}
	f.Add(eagerStream(f), uint8(5))
	f.Fuzz(func(t *testing.T, in []byte, piece uint8) {
		const limit = 1 << 16
		whole, streamed := NewReader(bytes.NewReader(in)), NewReader(bytes.NewReader(in))
		whole.SetLimit(TypeChunk, chunkFixedLen+limit)
		streamed.SetLimit(TypeChunk, chunkFixedLen+limit)
		buf := make([]byte, int(piece)+1)
		for n := 0; ; n++ {
			want, werr := whole.Next()
			got, head, err := streamed.NextStreamed()
			if werr != nil && head != nil {
				// A chunk cut short: its head reads, its data must not.
				if _, err := io.Copy(io.Discard, readerFunc(streamed.ReadData)); err == nil {
					t.Fatalf("frame %d: the whole chunk failed (%v), its streamed data read", n, werr)
				}
				return
			}
			if (err == nil) != (werr == nil) {
				t.Fatalf("frame %d: streamed %v, whole %v", n, err, werr)
			}
			if err != nil {
				return
			}
			if head == nil {
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("frame %d: streamed %+v, whole %+v", n, got, want)
				}
				continue
			}
			c, ok := want.(Chunk)
			if !ok || c.Index != head.Index || c.Hash != head.Hash || len(c.Data) != head.Len || head.Len > limit {
				t.Fatalf("frame %d: head %+v, whole %+v", n, head, want)
			}
			// Read the first piece of odd chunks only: the next call
			// skips the rest.
			var data []byte
			for {
				k, err := streamed.ReadData(buf)
				data = append(data, buf[:k]...)
				if err != nil || n%2 == 1 {
					break
				}
			}
			if !bytes.HasPrefix(c.Data, data) || n%2 == 0 && len(data) != len(c.Data) {
				t.Fatalf("frame %d: read %d bytes of data unlike the chunk's %d", n, len(data), len(c.Data))
			}
		}
	})
}

// readerFunc makes a Read method of a function.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

// checkOffer fails unless the chunks of an accepted offer cover its size
// exactly: enough chunks for every byte, none wholly past the end, and a
// size that fits an int64 (file sizes and offsets are int64).
func checkOffer(t *testing.T, o Offer) {
	t.Helper()
	n, cs := uint64(o.Chunks()), uint64(o.ChunkSize)
	switch {
	case o.Size > math.MaxInt64:
		t.Fatalf("offer of %d bytes accepted: beyond int64", o.Size)
	case o.Chunks() < 0 || o.Chunks() > MaxChunks:
		t.Fatalf("offer of %d bytes accepted with %d chunks", o.Size, o.Chunks())
	case n*cs < o.Size:
		t.Fatalf("offer of %d bytes accepted with %d chunks of %d: too few", o.Size, n, cs)
	case o.Size > 0 && (n-1)*cs >= o.Size:
		t.Fatalf("offer of %d bytes accepted with %d chunks of %d: too many", o.Size, n, cs)
	case o.Size == 0 && n != 0:
		t.Fatalf("empty offer accepted with %d chunks", n)
	}
}
