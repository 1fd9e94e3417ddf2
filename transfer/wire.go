package transfer

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"time"
	"unicode/utf8"
)

// Versions of the protocol. Every frame header carries one. A receiver
// answers an OFFER in the OFFER's version, for any version from
// MinVersion to Version; a sender offers Version first and, refused with
// CodeVersion in a frame of an older version, offers again in that one
// (negotiate.go). A frame of a version the Reader does not speak, or of
// another version than the stream's first frame, is refused with
// ErrVersion.
//
//   - 1: one stream per file; SHA-256 chunk hashes.
//   - 2: adds LANE: a file's chunks may also travel on extra streams,
//     each on a QUIC connection of its own (lanes.go).
//   - 3: a small file may come whole: its sender writes OFFER, CHUNK and
//     END at once, before the ACCEPT (eager.go), so that it costs one
//     round trip rather than three. No new frames.
const (
	Version    = 3
	MinVersion = 1
)

// headerLen is the fixed frame header: version (1 byte), type (1 byte),
// payload length (4 bytes, big-endian).
const headerLen = 6

// Limits of the wire format. A decoder refuses anything beyond them, so a
// peer cannot make us allocate more than one chunk's worth per stream.
const (
	// DefaultChunkSize is large enough that per-chunk costs (a hash, a
	// frame header, a state record) vanish next to the data, and small
	// enough that a resume re-sends little.
	DefaultChunkSize = 1 << 20
	// MinChunkSize and MaxChunkSize bound what an OFFER may ask for.
	MinChunkSize = 4 << 10
	MaxChunkSize = 16 << 20
	// MaxChunks bounds the chunks of one file, and with it the
	// have-bitmap (1 MiB) and the hash list the receiver keeps: 8 TiB at
	// the default chunk size.
	MaxChunks = 1 << 23
	// MaxNameLen bounds a file name (a relative path) in an OFFER.
	MaxNameLen = 4096
	// maxReasonLen bounds the text of a REJECT, NAK or ABORT.
	maxReasonLen = 1024
	// MaxAckBatch bounds the chunk indexes one ACK names.
	MaxAckBatch = 4096
	// MaxLanes bounds the LANE streams a receiver takes for one file,
	// besides the OFFER's stream; more are refused. Each is a
	// congestion controller of its own, and 16 of them move a
	// 100 Mbit/s link at 50 ms round trip through 0.5 % random loss
	// (make bench), where one alone moves under 1 MiB/s.
	MaxLanes = 16
)

// Errors returned by the decoders, wrapped with what was wrong.
var (
	ErrMalformed = errors.New("malformed transfer frame")
	ErrTooLarge  = errors.New("transfer frame too large")
	ErrVersion   = errors.New("unsupported transfer protocol version")
)

// Type says what a frame carries. Values are on the wire: never renumber.
type Type uint8

// Frame types.
const (
	TypeOffer  Type = 1
	TypeAccept Type = 2
	TypeReject Type = 3
	TypeChunk  Type = 4
	TypeAck    Type = 5
	TypeNak    Type = 6
	TypeEnd    Type = 7
	TypeEndAck Type = 8
	TypeAbort  Type = 9
	TypeLane   Type = 10 // version 2 on
)

var typeNames = [...]string{
	TypeOffer: "OFFER", TypeAccept: "ACCEPT", TypeReject: "REJECT", TypeChunk: "CHUNK", TypeAck: "ACK",
	TypeNak: "NAK", TypeEnd: "END", TypeEndAck: "END_ACK", TypeAbort: "ABORT", TypeLane: "LANE",
}

// since is the first version that has frames of type t.
func since(t Type) uint8 {
	if t == TypeLane {
		return 2
	}
	return 1
}

func (t Type) String() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// maxPayload is the largest payload a frame of type t may have; zero
// means the type is unknown.
func maxPayload(t Type) int {
	switch t {
	case TypeOffer:
		return offerFixedLen + MaxNameLen
	case TypeAccept:
		return 4 + MaxChunks/8
	case TypeChunk:
		return chunkFixedLen + MaxChunkSize
	case TypeAck:
		return 4 + 4*MaxAckBatch
	case TypeReject, TypeAbort:
		return 1 + 2 + maxReasonLen
	case TypeNak:
		return 4 + 2 + maxReasonLen
	case TypeEnd:
		return HashLen
	case TypeEndAck:
		return 2 + MaxNameLen
	case TypeLane:
		return len(ID{})
	}
	return 0
}

// HashLen is the length of a chunk hash and of a root (SHA-256).
const HashLen = 32

// Hash is a SHA-256 digest.
type Hash [HashLen]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ID names one transfer: the sender picks it at random and keeps it for
// the life of the transfer, across reconnects and restarts, so the
// receiver can find what it already holds.
type ID [16]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID reads an ID in the form String prints.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("transfer ID %q: want %d hex digits", s, 2*len(id))
	}
	copy(id[:], b)
	return id, nil
}

// Frame is one message of the protocol.
type Frame interface {
	Type() Type
	// appendPayload appends the encoded payload to b.
	appendPayload(b []byte) []byte
}

// Offer proposes a file. Size, ModTime and ChunkSize identify the
// version of the file: a receiver holding chunks of the same ID but
// another version starts over.
type Offer struct {
	ID        ID
	Size      uint64
	ChunkSize uint32
	ModTime   time.Time   // kept with nanosecond precision
	Mode      fs.FileMode // permission bits only
	Name      string      // relative, '/'-separated; the receiver makes it safe
}

const offerFixedLen = 16 + 8 + 4 + 8 + 4 + 2

// Chunks is the number of chunks the offered file has.
func (o Offer) Chunks() int { return chunkCount(o.Size, o.ChunkSize) }

// ChunkLen is the length of chunk i; only the last one may be short.
func (o Offer) ChunkLen(i int) int {
	start := uint64(i) * uint64(o.ChunkSize)
	return int(min(uint64(o.ChunkSize), o.Size-start))
}

// chunkCount is size/chunk rounded up, computed without size+chunk-1,
// which wraps for sizes near 2^64 (such an offer had 0 chunks). A count
// beyond MaxChunks comes back as MaxChunks+1, which Decode refuses
// anyway, so that it fits an int everywhere.
func chunkCount(size uint64, chunk uint32) int {
	if chunk == 0 {
		return 0
	}
	n := size / uint64(chunk)
	if size%uint64(chunk) != 0 {
		n++
	}
	return int(min(n, MaxChunks+1))
}

// Accept answers an Offer with the chunks the receiver already holds.
type Accept struct{ Have Bitmap }

// Reject answers an Offer with a refusal.
type Reject struct {
	Code   Code
	Reason string
}

// Chunk carries one chunk of the file and the SHA-256 of its data.
type Chunk struct {
	Index uint32
	Hash  Hash
	Data  []byte // from Reader.Next: valid until the next call
}

const chunkFixedLen = 4 + HashLen

// Ack says the named chunks are verified, durable and recorded.
type Ack struct{ Indexes []uint32 }

// Nak asks for a chunk again: its data did not match its hash.
type Nak struct {
	Index  uint32
	Reason string
}

// End says every chunk was sent and gives the whole-file hash.
type End struct{ Root Hash }

// EndAck says the file is complete under Name in the downloads folder.
type EndAck struct{ Name string }

// Abort ends a transfer early, from either side.
type Abort struct {
	Code   Code
	Reason string
}

// Lane opens an extra stream of a transfer: the first frame on it names
// the transfer, and CHUNKs follow, as on the OFFER's stream. Everything
// else (ACKs, NAKs, END) stays on the OFFER's stream.
type Lane struct{ ID ID }

// Type implements Frame.
func (Offer) Type() Type  { return TypeOffer }
func (Accept) Type() Type { return TypeAccept }
func (Reject) Type() Type { return TypeReject }
func (Chunk) Type() Type  { return TypeChunk }
func (Ack) Type() Type    { return TypeAck }
func (Nak) Type() Type    { return TypeNak }
func (End) Type() Type    { return TypeEnd }
func (EndAck) Type() Type { return TypeEndAck }
func (Abort) Type() Type  { return TypeAbort }
func (Lane) Type() Type   { return TypeLane }

func (o Offer) appendPayload(b []byte) []byte {
	b = append(b, o.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, o.Size)
	b = binary.BigEndian.AppendUint32(b, o.ChunkSize)
	b = binary.BigEndian.AppendUint64(b, uint64(o.ModTime.UnixNano()))
	b = binary.BigEndian.AppendUint32(b, uint32(o.Mode.Perm()))
	return appendString(b, o.Name)
}

func (a Accept) appendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(a.Have.Len()))
	return append(b, a.Have.bits...)
}

func (r Reject) appendPayload(b []byte) []byte {
	return appendString(append(b, byte(r.Code)), r.Reason)
}
func (a Abort) appendPayload(b []byte) []byte { return appendString(append(b, byte(a.Code)), a.Reason) }

func (c Chunk) appendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, c.Index)
	b = append(b, c.Hash[:]...)
	return append(b, c.Data...)
}

func (a Ack) appendPayload(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(a.Indexes)))
	for _, i := range a.Indexes {
		b = binary.BigEndian.AppendUint32(b, i)
	}
	return b
}

func (n Nak) appendPayload(b []byte) []byte {
	return appendString(binary.BigEndian.AppendUint32(b, n.Index), n.Reason)
}

func (e End) appendPayload(b []byte) []byte    { return append(b, e.Root[:]...) }
func (l Lane) appendPayload(b []byte) []byte   { return append(b, l.ID[:]...) }
func (e EndAck) appendPayload(b []byte) []byte { return appendString(b, e.Name) }

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// AppendFrame appends f with its header, in version Version, to b. It
// fails if f breaks a limit of the format, so a sender cannot emit what a
// receiver refuses.
func AppendFrame(b []byte, f Frame) ([]byte, error) { return appendFrame(b, Version, f) }

// appendFrame is AppendFrame in version v.
func appendFrame(b []byte, v uint8, f Frame) ([]byte, error) {
	if v < since(f.Type()) {
		return b, fmt.Errorf("%w: no %s in version %d", ErrVersion, f.Type(), v)
	}
	start := len(b)
	b = append(b, v, byte(f.Type()), 0, 0, 0, 0)
	b = f.appendPayload(b)
	n := len(b) - start - headerLen
	if n > maxPayload(f.Type()) {
		return b[:start], fmt.Errorf("%w: %s of %d bytes", ErrTooLarge, f.Type(), n)
	}
	binary.BigEndian.PutUint32(b[start+2:], uint32(n))
	if _, err := Decode(f.Type(), b[start+headerLen:]); err != nil {
		return b[:start], fmt.Errorf("encode %s: %w", f.Type(), err)
	}
	return b, nil
}

// WriteChunk writes a CHUNK frame, in version Version, without copying
// its data.
func WriteChunk(w io.Writer, c Chunk) error { return writeChunk(w, Version, c) }

func writeChunk(w io.Writer, v uint8, c Chunk) error {
	if err := writeChunkHead(w, v, c.Index, c.Hash, len(c.Data)); err != nil {
		return err
	}
	_, err := w.Write(c.Data)
	return err
}

// writeChunkHead writes what precedes a CHUNK's n bytes of data; the
// data follows, in as many writes as the caller likes.
func writeChunkHead(w io.Writer, v uint8, index uint32, hash Hash, n int) error {
	if n > MaxChunkSize {
		return fmt.Errorf("%w: chunk of %d bytes", ErrTooLarge, n)
	}
	var hdr [headerLen + chunkFixedLen]byte
	hdr[0], hdr[1] = v, byte(TypeChunk)
	binary.BigEndian.PutUint32(hdr[2:], uint32(chunkFixedLen+n))
	binary.BigEndian.PutUint32(hdr[headerLen:], index)
	copy(hdr[headerLen+4:], hash[:])
	_, err := w.Write(hdr[:])
	return err
}

// WriteFrame writes one frame in version Version.
func WriteFrame(w io.Writer, f Frame) error { return writeFrame(w, Version, f) }

// writeFrame writes one frame in version v.
func writeFrame(w io.Writer, v uint8, f Frame) error {
	if c, ok := f.(Chunk); ok {
		return writeChunk(w, v, c)
	}
	b, err := appendFrame(nil, v, f)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// numTypes bounds the frame type values: they run from 1 to TypeLane.
const numTypes = int(TypeLane) + 1

// Reader reads frames from a stream, reusing one buffer, which grows to
// the largest frame read so far. A stream speaks one version: the first
// frame's (Version says which); a later frame of another is refused.
type Reader struct {
	r       io.Reader
	buf     []byte
	limits  [numTypes]int // the largest payload accepted, by type
	version uint8         // of the first frame; 0 before it
	left    int           // data of a streamed chunk not read yet (stream.go)
}

// NewReader returns a Reader on r that accepts frames up to the limits
// of the format.
func NewReader(r io.Reader) *Reader {
	rd := &Reader{r: r}
	for t := range rd.limits {
		rd.limits[t] = maxPayload(Type(t))
	}
	return rd
}

// SetLimit sets the largest payload Next accepts in a frame of type t,
// at most the format's own limit: a larger frame is refused with
// ErrTooLarge from its header alone, before a byte of its payload is
// read or allocated. A receiver limits CHUNK frames to the chunk size
// the OFFER named, and frames it never expects to nothing.
func (r *Reader) SetLimit(t Type, n int) {
	if int(t) < numTypes {
		r.limits[t] = max(0, min(n, maxPayload(t)))
	}
}

// Version is the version of the stream's frames: that of its first
// frame, or 0 before one was read.
func (r *Reader) Version() uint8 { return r.version }

// Next reads the next frame. A Chunk's Data is valid until the next call.
// A stream that ends cleanly between frames gives io.EOF; one that ends
// inside a frame gives io.ErrUnexpectedEOF.
func (r *Reader) Next() (Frame, error) {
	t, n, err := r.header()
	if err != nil {
		return nil, err
	}
	return r.payload(t, n)
}

// header skips what is left of a streamed chunk, then reads and checks
// the next frame's header: its version, type and the length of its
// payload, within the limit for its type.
func (r *Reader) header() (Type, int, error) {
	if err := r.skipData(); err != nil {
		return 0, 0, err
	}
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r.r, hdr[:]); err != nil {
		return 0, 0, err
	}
	v, t, n, err := parseHeader(hdr[:])
	if err != nil {
		return 0, 0, err
	}
	switch {
	case r.version == 0:
		r.version = v
	case v != r.version:
		return 0, 0, fmt.Errorf("%w: a frame of version %d in a stream of version %d", ErrVersion, v, r.version)
	}
	if n > r.limits[t] {
		return 0, 0, fmt.Errorf("%w: %s of %d bytes (limit here %d)", ErrTooLarge, t, n, r.limits[t])
	}
	return t, n, nil
}

// payload reads a frame's n bytes of payload and decodes them.
func (r *Reader) payload(t Type, n int) (Frame, error) {
	if cap(r.buf) < n {
		r.buf = make([]byte, n)
	}
	payload := r.buf[:n]
	if _, err := io.ReadFull(r.r, payload); err != nil {
		return nil, fmt.Errorf("read %s: %w", t, unexpected(err))
	}
	return Decode(t, payload)
}

func parseHeader(hdr []byte) (v uint8, t Type, n int, err error) {
	v = hdr[0]
	if v < MinVersion || v > Version {
		return 0, 0, 0, fmt.Errorf("%w: %d (this build speaks %d to %d)", ErrVersion, v, MinVersion, Version)
	}
	t = Type(hdr[1])
	limit := maxPayload(t)
	if limit == 0 || v < since(t) {
		return 0, 0, 0, fmt.Errorf("%w: unknown %s in version %d", ErrMalformed, t, v)
	}
	size := binary.BigEndian.Uint32(hdr[2:])
	if size > uint32(limit) {
		return 0, 0, 0, fmt.Errorf("%w: %s of %d bytes (limit %d)", ErrTooLarge, t, size, limit)
	}
	return v, t, int(size), nil
}

// Decode parses the payload of a frame of type t. A Chunk's Data aliases
// payload.
func Decode(t Type, payload []byte) (Frame, error) {
	if len(payload) > maxPayload(t) {
		return nil, fmt.Errorf("%w: %s of %d bytes", ErrTooLarge, t, len(payload))
	}
	d := decoder{b: payload}
	var f Frame
	switch t {
	case TypeOffer:
		o := Offer{ID: ID(d.bytes(16)), Size: d.u64(), ChunkSize: d.u32()}
		o.ModTime = time.Unix(0, int64(d.u64()))
		o.Mode = fs.FileMode(d.u32())
		o.Name = d.string(MaxNameLen)
		d.check(o.Mode == o.Mode.Perm(), "mode has more than permission bits")
		d.check(o.ChunkSize >= MinChunkSize && o.ChunkSize <= MaxChunkSize, "chunk size out of range")
		d.check(o.Size <= math.MaxInt64, "size beyond 2^63-1")
		d.check(o.Size <= MaxChunks*uint64(o.ChunkSize), "too many chunks")
		d.check(o.Name != "", "empty name")
		f = o
	case TypeAccept:
		n := d.u32()
		d.check(n <= MaxChunks, "too many chunks")
		bits := d.bytes(int(min(n, MaxChunks)+7) / 8)
		have, ok := bitmapFrom(int(n), bits)
		d.check(ok, "bitmap has bits beyond its length")
		f = Accept{Have: have}
	case TypeReject:
		f = Reject{Code: Code(d.u8()), Reason: d.string(maxReasonLen)}
	case TypeAbort:
		f = Abort{Code: Code(d.u8()), Reason: d.string(maxReasonLen)}
	case TypeChunk:
		c := Chunk{Index: d.u32(), Hash: Hash(d.bytes(HashLen))}
		c.Data = d.rest()
		f = c
	case TypeAck:
		n := d.u32()
		d.check(n > 0 && n <= MaxAckBatch, "ACK must name 1 to 4096 chunks")
		a := Ack{Indexes: make([]uint32, 0, min(n, MaxAckBatch))}
		for range min(n, MaxAckBatch) {
			a.Indexes = append(a.Indexes, d.u32())
		}
		f = a
	case TypeNak:
		f = Nak{Index: d.u32(), Reason: d.string(maxReasonLen)}
	case TypeEnd:
		f = End{Root: Hash(d.bytes(HashLen))}
	case TypeEndAck:
		e := EndAck{Name: d.string(MaxNameLen)}
		d.check(e.Name != "", "empty name")
		f = e
	case TypeLane:
		f = Lane{ID: ID(d.bytes(16))}
	default:
		return nil, fmt.Errorf("%w: unknown %s", ErrMalformed, t)
	}
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%d bytes after the end", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, t, d.err)
	}
	return f, nil
}

// decoder reads fixed fields off a payload; the first short read or
// failed check sets err, and later reads return zero values.
type decoder struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (d *decoder) bytes(n int) []byte {
	if d.err != nil || len(d.b) < n {
		if d.err == nil {
			d.err = errTruncated
		}
		return make([]byte, n)
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) u8() uint8   { return d.bytes(1)[0] }
func (d *decoder) u32() uint32 { return binary.BigEndian.Uint32(d.bytes(4)) }
func (d *decoder) u64() uint64 { return binary.BigEndian.Uint64(d.bytes(8)) }

func (d *decoder) rest() []byte {
	b := d.b
	d.b = nil
	return b
}

func (d *decoder) string(limit int) string {
	n := int(binary.BigEndian.Uint16(d.bytes(2)))
	d.check(n <= limit, "text too long")
	s := d.bytes(min(n, limit))
	d.check(utf8.Valid(s), "text is not UTF-8")
	return string(s)
}

func (d *decoder) check(ok bool, what string) {
	if !ok && d.err == nil {
		d.err = errors.New(what)
	}
}
