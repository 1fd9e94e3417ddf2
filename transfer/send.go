package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// maxChunkRetries bounds how often one chunk is sent again after a NAK
// before the transfer fails: a chunk that arrives corrupt four times is a
// broken path or disk, not bad luck.
const maxChunkRetries = 3

// readAhead is how many chunks the sender reads and hashes ahead of the
// ones it writes, so disk, hashing and the network overlap. Memory per
// transfer is readAhead+1 chunks, and one more per stream it writes on.
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
	// Version is the protocol version to offer the file in; zero means
	// Version. SendOver lowers it for a peer that speaks an older one.
	Version uint8
	// Lanes, if not nil, opens extra streams to the receiver, each on a
	// connection of its own, for the file's chunks (lanes.go); MaxLanes
	// bounds how many are asked for. Nil or zero sends on one stream.
	Lanes    LaneOpener
	MaxLanes int
}

// Progress is told how far a file has gone, out of its size: the bytes
// the receiver holds durably, plus those of chunks on their way (the
// sender's: written to the connection; the receiver's: arrived in its
// staging file), which end up held or are counted out again if their
// stream fails. A chunk takes a while on a slow link, longer still
// when lanes carry several at once (1 MiB at 1 Mbit/s over 8 lanes:
// over a minute), so counting only held chunks would show a transfer
// standing still for that long and then leaping.
type Progress func(done, total int64)

// Result is what one Send achieved.
type Result struct {
	Name  string // what the receiver stored the file as, on success
	Sent  int64  // chunk bytes written to the streams, whether or not it succeeded
	Lanes int    // extra streams the chunks went on besides the OFFER's
	// Version is the protocol version the file went in (SendOver's last
	// offer); zero if no offer was made.
	Version uint8
}

// Send offers src on stream and sends the chunks the receiver lacks,
// striped over the stream and the lanes src opens. An *Error says the
// receiver refused or aborted, or why we aborted; other errors are lost
// connections and local I/O.
func Send(ctx context.Context, stream Stream, src Source, progress Progress) (Result, error) {
	s, err := newSender(ctx, stream, src, progress)
	if err != nil {
		abort(stream, versionOr(src.Version), err)
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
		abort(stream, s.version, te)
	}
	return Result{Name: name, Sent: s.sent.Load(), Lanes: s.lanesUsed, Version: s.version}, err
}

// versionOr is v, or Version for zero.
func versionOr(v uint8) uint8 {
	if v == 0 {
		return Version
	}
	return v
}

type sender struct {
	ctx       context.Context
	stream    Stream
	version   uint8
	src       Source
	file      *os.File
	offer     Offer
	progress  Progress
	frames    chan frameOrErr // what the receiver says, read by one goroutine
	quit      chan struct{}   // closed when Send returns
	readErr   error           // set once frames has delivered its last word
	hashes    []Hash          // of every chunk, as read, in order
	sent      atomic.Int64    // chunk bytes written
	lanesUsed int             // lanes that carried chunks

	mu      sync.Mutex // guards following
	hashed  int        // chunks read and hashed so far, in order
	acked   Bitmap
	ackedN  int   // chunks in acked
	done    int64 // bytes in acked chunks
	retries map[uint32]int
	// onWay is the bytes of each chunk written and not ACKed yet, for
	// Progress; flying is their sum.
	onWay  map[uint32]int64
	flying int64
}

type frameOrErr struct {
	f   Frame
	err error
}

func newSender(ctx context.Context, stream Stream, src Source, progress Progress) (*sender, error) {
	chunk := src.ChunkSize
	if chunk == 0 {
		chunk = DefaultChunkSize
	}
	v := versionOr(src.Version)
	if v < MinVersion || v > Version {
		return nil, &Error{Code: CodeVersion, Reason: fmt.Sprintf("cannot speak version %d", v)}
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
		ctx:      ctx,
		stream:   stream,
		version:  v,
		src:      src,
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
	if s.eager() {
		return s.runEager()
	}
	if err := writeFrame(s.stream, s.version, s.offer); err != nil {
		return "", fmt.Errorf("offer %s: %w", s.offer.Name, err)
	}
	r := NewReader(s.stream)
	go s.readFrames(r)
	reply, err := s.next()
	if err != nil {
		return "", fmt.Errorf("offer %s: %w", s.offer.Name, versionError(err, r.Version(), s.version))
	}
	accept, ok := reply.(Accept)
	if !ok || accept.Have.Len() != s.offer.Chunks() {
		return "", protocolError("answer to OFFER", reply)
	}
	s.accepted(accept.Have)
	if err := s.sendChunks(accept.Have); err != nil {
		return "", err
	}
	if err := s.checkUnchanged(); err != nil {
		return "", err
	}
	if err := writeFrame(s.stream, s.version, End{Root: root(s.version, s.hashes)}); err != nil {
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

// accepted takes the have-bitmap of the receiver's ACCEPT as ACKed, and
// reports it as the first progress.
func (s *sender) accepted(have Bitmap) {
	s.mu.Lock()
	// The reading goroutine reads the ACCEPT's bitmap while ACKs add to
	// s.acked: they are two.
	s.acked, _ = bitmapFrom(have.Len(), have.bits)
	for i := range s.offer.Chunks() {
		if s.acked.Has(i) {
			s.done += int64(s.offer.ChunkLen(i))
			s.ackedN++
		}
	}
	done := s.done
	s.mu.Unlock()
	s.progress(done, int64(s.offer.Size))
}

// readFrames passes what the receiver sends to the sending loop, so a
// sender blocked on flow control still learns of ACKs and aborts.
func (s *sender) readFrames(r *Reader) {
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

// handle acts on a frame from the receiver: an ACK records progress, a
// NAK asks st to send the chunk again.
func (s *sender) handle(st *striper, f Frame, err error) error {
	if err != nil {
		return fmt.Errorf("send %s: %w", s.offer.Name, err)
	}
	switch f := f.(type) {
	case Ack:
		s.mu.Lock()
		for _, i := range f.Indexes {
			if !s.acked.Has(int(i)) && int(i) < s.offer.Chunks() {
				s.acked.Set(int(i))
				s.ackedN++
				s.done += int64(s.offer.ChunkLen(int(i)))
			}
			s.flying -= s.onWay[i]
			delete(s.onWay, i)
		}
		done := s.done + s.flying
		s.mu.Unlock()
		s.progress(done, int64(s.offer.Size))
		return nil
	case Nak:
		if err := s.nakked(f); err != nil {
			return err
		}
		st.again(f.Index)
		return nil
	}
	return protocolError("frame during chunks", f)
}

// isAcked reports whether the receiver holds chunk i.
// wrote counts n more bytes of chunk i written to a stream, for
// Progress, unless the chunk was ACKed meanwhile.
func (s *sender) wrote(i uint32, n int64) {
	s.mu.Lock()
	if s.acked.Has(int(i)) {
		s.mu.Unlock()
		return
	}
	if s.onWay == nil {
		s.onWay = map[uint32]int64{}
	}
	s.onWay[i] += n
	s.flying += n
	done := s.done + s.flying
	s.mu.Unlock()
	s.progress(done, int64(s.offer.Size))
}

// lost counts chunk i's written bytes out again: the stream it went on
// failed, or it is to be sent again.
func (s *sender) lost(i uint32) {
	s.mu.Lock()
	s.flying -= s.onWay[i]
	delete(s.onWay, i)
	s.mu.Unlock()
}

func (s *sender) isAcked(i uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked.Has(int(i))
}

// allAcked reports whether the receiver holds every chunk.
func (s *sender) allAcked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ackedN == s.offer.Chunks()
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

func protocolError(what string, f Frame) *Error {
	got := "nothing"
	if f != nil {
		got = f.Type().String()
	}
	return &Error{Code: CodeProtocol, Reason: fmt.Sprintf("%s: unexpected %s", what, got)}
}

// abort tells the other side why we stop, in version v, best effort:
// the stream may already be gone.
func abort(stream Stream, v uint8, err error) {
	var te *Error
	if !errors.As(err, &te) || te.Remote {
		return
	}
	stream.SetWriteDeadline(time.Now().Add(abortWriteTimeout))
	writeFrame(stream, v, Abort{Code: te.Code, Reason: te.Reason})
	stream.Close()
	stream.CancelRead(streamCancelled)
}

// nakked counts a NAK against its chunk's retries: an error when the
// chunk does not exist, or failed verification too often.
func (s *sender) nakked(nak Nak) error {
	if int(nak.Index) >= s.offer.Chunks() {
		return protocolError("NAK of a chunk that does not exist", nak)
	}
	s.mu.Lock()
	s.retries[nak.Index]++
	tries := s.retries[nak.Index]
	s.mu.Unlock()
	if tries > maxChunkRetries {
		return &Error{Code: CodeCorrupt, Reason: fmt.Sprintf("chunk %d failed verification %d times: %s", nak.Index, tries, nak.Reason)}
	}
	return nil
}
