package transfer

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Streamed chunks: a receiver reads a CHUNK's data piece by piece
// straight from the stream into its staging file, hashing as it goes,
// instead of holding the whole chunk in memory first. A transfer's
// receive buffer is then a few pieces, whatever the chunk size, and
// shared among its streams, so a file striped over lanes takes no more
// memory than one on a single stream.

// ChunkHead is a CHUNK frame whose data the Reader has not read:
// NextStreamed returns it, and ReadData reads its Len bytes of data.
type ChunkHead struct {
	Index uint32
	Hash  Hash
	Len   int
}

// NextStreamed is Next, except that a CHUNK frame comes back as a
// ChunkHead (and a nil Frame) with its data left on the stream for
// ReadData; the next call skips whatever of it ReadData did not read.
// Any other frame comes back as Next returns it, with a nil ChunkHead.
func (r *Reader) NextStreamed() (Frame, *ChunkHead, error) {
	t, n, err := r.header()
	if err != nil {
		return nil, nil, err
	}
	if t != TypeChunk {
		f, err := r.payload(t, n)
		return f, nil, err
	}
	if n < chunkFixedLen {
		return nil, nil, fmt.Errorf("%w: %s: truncated", ErrMalformed, t)
	}
	var fixed [chunkFixedLen]byte
	if _, err := io.ReadFull(r.r, fixed[:]); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", t, unexpected(err))
	}
	h := &ChunkHead{Index: binary.BigEndian.Uint32(fixed[:]), Hash: Hash(fixed[4:]), Len: n - chunkFixedLen}
	r.left = h.Len
	return nil, h, nil
}

// ReadData reads data of the chunk NextStreamed returned last, at most
// len(p) bytes; it returns io.EOF once all of it was read.
func (r *Reader) ReadData(p []byte) (int, error) {
	if r.left == 0 {
		return 0, io.EOF
	}
	n, err := r.r.Read(p[:min(len(p), r.left)])
	r.left -= n
	if err != nil {
		return n, fmt.Errorf("read %s: %w", TypeChunk, unexpected(err))
	}
	return n, nil
}

// skipData reads and drops the rest of a streamed chunk's data.
func (r *Reader) skipData() error {
	if r.left == 0 {
		return nil
	}
	n, err := io.CopyN(io.Discard, r.r, int64(r.left))
	r.left -= int(n)
	if err != nil {
		return fmt.Errorf("read %s: %w", TypeChunk, unexpected(err))
	}
	return nil
}

// unexpected is err, but io.ErrUnexpectedEOF for a stream that ended
// inside a frame.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
