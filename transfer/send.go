package transfer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/quic-go/quic-go"
)

// maxChunkRetries bounds how often one chunk is sent again after a NAK
// before the transfer fails: a chunk that arrives corrupt four times is a
// broken path or disk, not bad luck.
const maxChunkRetries = 3

// readAhead is how many chunks the sender reads and hashes ahead of the
// one it writes, so disk, hashing and the network overlap. Memory per
// transfer is (readAhead+1) chunks, whatever the file's size.
const readAhead = 2

// abortWriteTimeout bounds the wait to tell the other side why we stop;
// a peer that does not read for a second will learn it from the reset.
const abortWriteTimeout = time.Second

// Stream is the part of a QUIC stream a transfer uses.
type Stream interface {
	io.ReadWriter
	// Close ends the write side cleanly.
	Close() error
	// CancelRead and CancelWrite reset the stream at once, unblocking
	// any Read or Write.
	CancelRead(quic.StreamErrorCode)
	CancelWrite(quic.StreamErrorCode)
	SetWriteDeadline(time.Time) error
}

// streamCancelled is the QUIC error code for a transfer stream reset
// because its context ended (a shutdown, a cancelled transfer).
const streamCancelled quic.StreamErrorCode = 1

// streamDone is the QUIC error code with which a side that is finished
// with a stream stops reading it.
const streamDone quic.StreamErrorCode = 0

// guard resets stream when ctx ends; call the returned function once the
// transfer is over: it closes both directions, so QUIC can release the
// stream (a stream still open for reading counts against the peer's
// stream limit for good).
func guard(ctx context.Context, stream Stream) (release func()) {
	stop := context.AfterFunc(ctx, func() {
		stream.CancelRead(streamCancelled)
		stream.CancelWrite(streamCancelled)
	})
	return func() {
		stop()
		stream.Close()
		stream.CancelRead(streamDone)
	}
}

// Source is a file to send.
type Source struct {
	ID        ID
	Path      string // the file on disk
	Name      string // relative, '/'-separated name the receiver gets
	ChunkSize int    // zero means DefaultChunkSize
}

// Progress is told how many bytes the receiver holds durably, out of
// the file's size.
type Progress func(done, total int64)

// Result is what one Send achieved.
type Result struct {
	Name string // what the receiver stored the file as, on success
	Sent int64  // chunk bytes written to the stream, whether or not it succeeded
}

// Send offers src on stream and sends the chunks the receiver lacks. An
// *Error says the receiver refused or aborted, or why we aborted; other
// errors are lost connections and local I/O.
func Send(ctx context.Context, stream Stream, src Source, progress Progress) (Result, error) {
	s, err := newSender(stream, src, progress)
	if err != nil {
		abort(stream, err)
		return Result{}, err
	}
	defer s.file.Close()
	defer close(s.quit)
	defer guard(ctx, stream)()
	name, err := s.run()
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("send %s: %w", src.Name, ctx.Err())
	}
	var te *Error
	if errors.As(err, &te) && !te.Remote {
		abort(stream, te)
	}
	return Result{Name: name, Sent: s.sent}, err
}

type sender struct {
	stream   Stream
	file     *os.File
	offer    Offer
	progress Progress
	frames   chan frameOrErr // what the receiver says, read by one goroutine
	quit     chan struct{}   // closed when Send returns
	readErr  error           // set once frames has delivered its last word
	hashes   []Hash          // of every chunk, as read
	acked    Bitmap
	done     int64 // bytes in acked chunks
	sent     int64 // chunk bytes written
	retries  map[uint32]int
}

type frameOrErr struct {
	f   Frame
	err error
}

func newSender(stream Stream, src Source, progress Progress) (*sender, error) {
	chunk := src.ChunkSize
	if chunk == 0 {
		chunk = DefaultChunkSize
	}
	f, err := os.Open(src.Path)
	if err != nil {
		return nil, &Error{Code: CodeIO, Reason: fmt.Sprintf("open source: %v", err)}
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err != nil {
		f.Close()
		return nil, &Error{Code: CodeIO, Reason: fmt.Sprintf("source %s: %v", src.Path, err)}
	}
	if progress == nil {
		progress = func(int64, int64) {}
	}
	offer := Offer{ID: src.ID, Size: uint64(fi.Size()), ChunkSize: uint32(chunk), ModTime: fi.ModTime(), Mode: fi.Mode().Perm(), Name: src.Name}
	return &sender{
		stream:   stream,
		file:     f,
		offer:    offer,
		progress: progress,
		frames:   make(chan frameOrErr, 16),
		quit:     make(chan struct{}),
		hashes:   make([]Hash, offer.Chunks()),
		retries:  map[uint32]int{},
	}, nil
}

func (s *sender) run() (string, error) {
	if err := WriteFrame(s.stream, s.offer); err != nil {
		return "", fmt.Errorf("offer %s: %w", s.offer.Name, err)
	}
	go s.readFrames()
	reply, err := s.next()
	if err != nil {
		return "", fmt.Errorf("offer %s: %w", s.offer.Name, err)
	}
	accept, ok := reply.(Accept)
	if !ok || accept.Have.Len() != s.offer.Chunks() {
		return "", protocolError("answer to OFFER", reply)
	}
	s.acked = accept.Have
	for i := range s.offer.Chunks() {
		if s.acked.Has(i) {
			s.done += int64(s.offer.ChunkLen(i))
		}
	}
	s.progress(s.done, int64(s.offer.Size))
	if err := s.sendChunks(accept.Have); err != nil {
		return "", err
	}
	for s.acked.Count() < s.offer.Chunks() {
		if err := s.await(); err != nil {
			return "", err
		}
	}
	if err := s.checkUnchanged(); err != nil {
		return "", err
	}
	if err := WriteFrame(s.stream, End{Root: Root(s.hashes)}); err != nil {
		return "", fmt.Errorf("end %s: %w", s.offer.Name, err)
	}
	reply, err = s.next()
	if err != nil {
		return "", fmt.Errorf("end %s: %w", s.offer.Name, err)
	}
	done, ok := reply.(EndAck)
	if !ok {
		return "", protocolError("answer to END", reply)
	}
	s.stream.Close()
	return done.Name, nil
}

// readFrames passes what the receiver sends to the sending loop, so a
// sender blocked on flow control still learns of ACKs and aborts.
func (s *sender) readFrames() {
	r := NewReader(s.stream)
	for {
		f, err := r.Next()
		select {
		case s.frames <- frameOrErr{f, err}:
		case <-s.quit:
			return
		}
		if err != nil {
			return
		}
	}
}

// next waits for the receiver's next frame.
func (s *sender) next() (Frame, error) {
	if s.readErr != nil {
		return nil, s.readErr
	}
	return s.decode(<-s.frames)
}

// decode turns ABORT and REJECT into errors, and remembers the end of
// the stream.
func (s *sender) decode(fe frameOrErr) (Frame, error) {
	if fe.err != nil {
		if errors.Is(fe.err, io.EOF) {
			fe.err = io.ErrUnexpectedEOF
		}
		s.readErr = fe.err
		return nil, fe.err
	}
	switch f := fe.f.(type) {
	case Reject:
		return nil, remoteError(f.Code, f.Reason)
	case Abort:
		return nil, remoteError(f.Code, f.Reason)
	}
	return fe.f, nil
}

// sendChunks reads and hashes every chunk in order (the root needs all
// hashes) and writes the ones the receiver lacks, handling ACKs and NAKs
// that arrive meanwhile.
func (s *sender) sendChunks(have Bitmap) error {
	type readChunk struct {
		data []byte
		hash Hash
		err  error
	}
	n := s.offer.Chunks()
	ready := make(chan readChunk, readAhead)
	free := make(chan []byte, readAhead+1)
	for range readAhead + 1 {
		free <- make([]byte, min(uint64(s.offer.ChunkSize), s.offer.Size))
	}
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		for i := range n {
			var buf []byte
			select {
			case buf = <-free:
			case <-quit:
				return
			}
			data, hash, err := s.readChunk(i, buf)
			select {
			case ready <- readChunk{data, hash, err}:
			case <-quit:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for i := range n {
		c := <-ready
		if c.err != nil {
			return c.err
		}
		s.hashes[i] = c.hash
		if !have.Has(i) {
			if err := WriteChunk(s.stream, Chunk{Index: uint32(i), Hash: c.hash, Data: c.data}); err != nil {
				return s.explain(fmt.Errorf("send chunk %d of %s: %w", i, s.offer.Name, err))
			}
			s.sent += int64(len(c.data))
		}
		free <- c.data[:cap(c.data)]
		if err := s.drain(); err != nil {
			return err
		}
	}
	return nil
}

// readChunk reads chunk i into buf and hashes it. A short read means the
// file shrank under us.
func (s *sender) readChunk(i int, buf []byte) ([]byte, Hash, error) {
	data := buf[:s.offer.ChunkLen(i)]
	if _, err := s.file.ReadAt(data, int64(i)*int64(s.offer.ChunkSize)); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Hash{}, &Error{Code: CodeSourceChanged, Reason: "the file shrank while it was sent"}
		}
		return nil, Hash{}, &Error{Code: CodeIO, Reason: fmt.Sprintf("read chunk %d: %v", i, err)}
	}
	return data, sha256.Sum256(data), nil
}

// explain returns the receiver's reason when a write failed because the
// receiver stopped reading: its ABORT follows the stream reset closely.
func (s *sender) explain(err error) error {
	if s.readErr != nil {
		return err
	}
	timeout := time.After(abortWriteTimeout)
	for {
		select {
		case fe := <-s.frames:
			if _, ferr := s.decode(fe); ferr != nil {
				var te *Error
				if errors.As(ferr, &te) {
					return te
				}
				return err
			}
		case <-timeout:
			return err
		}
	}
}

// drain handles every frame already received, without waiting.
func (s *sender) drain() error {
	for s.readErr == nil {
		select {
		case fe := <-s.frames:
			if err := s.handle(s.decode(fe)); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return s.readErr
}

// await waits for the receiver's next frame and handles it.
func (s *sender) await() error { return s.handle(s.next()) }

// handle acts on a frame from the receiver: an ACK records progress, a
// NAK sends the chunk again.
func (s *sender) handle(f Frame, err error) error {
	if err != nil {
		return fmt.Errorf("send %s: %w", s.offer.Name, err)
	}
	switch f := f.(type) {
	case Ack:
		for _, i := range f.Indexes {
			if !s.acked.Has(int(i)) && int(i) < s.offer.Chunks() {
				s.acked.Set(int(i))
				s.done += int64(s.offer.ChunkLen(int(i)))
			}
		}
		s.progress(s.done, int64(s.offer.Size))
		return nil
	case Nak:
		return s.resend(f)
	}
	return protocolError("frame during chunks", f)
}

func (s *sender) resend(nak Nak) error {
	i := int(nak.Index)
	if i >= s.offer.Chunks() {
		return protocolError("NAK of a chunk that does not exist", nak)
	}
	s.retries[nak.Index]++
	if s.retries[nak.Index] > maxChunkRetries {
		return &Error{Code: CodeCorrupt, Reason: fmt.Sprintf("chunk %d failed verification %d times: %s", i, s.retries[nak.Index], nak.Reason)}
	}
	data, hash, err := s.readChunk(i, make([]byte, s.offer.ChunkSize))
	if err != nil {
		return err
	}
	if hash != s.hashes[i] {
		return &Error{Code: CodeSourceChanged, Reason: "the file changed while it was sent"}
	}
	if err := WriteChunk(s.stream, Chunk{Index: nak.Index, Hash: hash, Data: data}); err != nil {
		return s.explain(fmt.Errorf("resend chunk %d of %s: %w", i, s.offer.Name, err))
	}
	s.sent += int64(len(data))
	return nil
}

// checkUnchanged compares the file with what was offered, so a file
// edited while it was read is sent again rather than delivered mixed.
func (s *sender) checkUnchanged() error {
	fi, err := s.file.Stat()
	if err != nil {
		return &Error{Code: CodeIO, Reason: fmt.Sprintf("stat source: %v", err)}
	}
	if uint64(fi.Size()) != s.offer.Size || !fi.ModTime().Equal(s.offer.ModTime) {
		return &Error{Code: CodeSourceChanged, Reason: "the file changed while it was sent"}
	}
	return nil
}

// Root is the whole-file hash: SHA-256 over the chunk hashes in order.
func Root(hashes []Hash) Hash {
	h := sha256.New()
	for _, c := range hashes {
		h.Write(c[:])
	}
	return Hash(h.Sum(nil))
}

func protocolError(what string, f Frame) *Error {
	got := "nothing"
	if f != nil {
		got = f.Type().String()
	}
	return &Error{Code: CodeProtocol, Reason: fmt.Sprintf("%s: unexpected %s", what, got)}
}

// abort tells the other side why we stop, best effort: the stream may
// already be gone.
func abort(stream Stream, err error) {
	var te *Error
	if !errors.As(err, &te) || te.Remote {
		return
	}
	stream.SetWriteDeadline(time.Now().Add(abortWriteTimeout))
	WriteFrame(stream, Abort{Code: te.Code, Reason: te.Reason})
	stream.Close()
	stream.CancelRead(streamCancelled)
}
