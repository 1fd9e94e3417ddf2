package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Striping: a sender writes a file's chunks on the OFFER's stream and on
// its lanes at once, each chunk on whichever stream is free to take it,
// so every connection's congestion window is filled. One goroutine reads
// and hashes the file in order; a writer per stream takes the next chunk
// it read (or one to send again) and writes it; the sending goroutine
// (coordinate) reads the receiver's ACKs and NAKs from the OFFER's
// stream, and requeues what a lane that failed had not got ACKed.

// errLaneLost ends a lane whose receiver side stopped: it refused the
// lane or its stream broke.
var errLaneLost = errors.New("lane lost")

// job is one chunk a writer is to write.
type job struct {
	index  uint32
	data   []byte
	hash   Hash
	pooled bool // data is a buffer of the striper's pool
}

// writerEnd is how a writer stopped: err is nil once the file was done.
type writerEnd struct {
	lane    int // 0 is the OFFER's stream
	err     error
	unacked []uint32 // chunks it wrote that were not ACKed when it stopped
}

// striper runs one sendChunks.
type striper struct {
	s      *sender
	ready  chan job       // read ahead, in order; closed after the last chunk
	free   chan []byte    // pool buffers writers are done with
	limit  int            // pool buffers that may exist
	read   chan struct{}  // closed once every chunk was read and hashed
	done   chan struct{}  // closed when every chunk is ACKed or the send failed
	ended  chan writerEnd // one per writer
	failed chan error     // reading a chunk failed (the first error)
	wg     sync.WaitGroup // the reader, the writers, the lane opener
	bufs   int            // pool buffers made; the reading goroutine's

	mu    sync.Mutex    // guards following
	queue []uint32      // chunks to send again: NAKed, or lost with a lane
	wake  chan struct{} // signalled when queue grows
	lanes int           // lanes that took chunks
}

// sendChunks reads and hashes every chunk in order (the root needs all
// hashes) and writes those the receiver lacks, over the OFFER's stream
// and the lanes src opens, until the receiver has ACKed them all.
func (s *sender) sendChunks(have Bitmap) error {
	lanes := s.lanesWanted(have)
	st := &striper{
		s:      s,
		ready:  make(chan job, readAhead),
		limit:  readAhead + 2 + lanes, // the reader's, those read ahead, the writers'
		read:   make(chan struct{}),
		done:   make(chan struct{}),
		ended:  make(chan writerEnd, 1+lanes),
		failed: make(chan error, 1),
		wake:   make(chan struct{}, 1),
	}
	st.free = make(chan []byte, st.limit)
	st.wg.Go(func() { st.readAll(have) })
	st.wg.Go(func() { st.write(0, s.stream, nil) })
	ctx, cancel := context.WithCancel(s.ctx)
	if lanes > 0 {
		st.wg.Go(func() { st.openLanes(ctx, lanes) })
	}
	err := st.coordinate()
	cancel()
	close(st.done)
	st.wg.Wait()
	s.lanesUsed = st.lanes
	return err
}

// lanesWanted is how many lanes to ask for: none in version 1, nor for
// a file with one chunk left to send; else one per chunk left beyond
// the first, up to what the source allows and what the receiver takes
// for a file of this chunk size (pieces).
func (s *sender) lanesWanted(have Bitmap) int {
	if s.src.Lanes == nil {
		return 0
	}
	_, takes := pieces(int(min(uint64(s.offer.ChunkSize), s.offer.Size)), s.version)
	left := s.offer.Chunks() - have.Count()
	return max(0, min(s.src.MaxLanes, takes, left-1))
}

// coordinate handles the receiver's frames and the writers' ends until
// every chunk was hashed and is ACKed. A failed lane costs only itself:
// what it had not got ACKed goes to the others.
func (st *striper) coordinate() error {
	s := st.s
	read := st.read
	for read != nil || !s.allAcked() {
		select {
		case <-read:
			read = nil
		case fe := <-s.frames:
			f, err := s.decode(fe)
			if err := s.handle(st, f, err); err != nil {
				return err
			}
		case e := <-st.ended:
			if e.lane == 0 {
				select {
				case err := <-st.failed:
					return err // the writer stopped for it
				default:
				}
				return s.explain(fmt.Errorf("send chunks of %s: %w", s.offer.Name, e.err))
			}
			for _, i := range e.unacked {
				st.again(i)
			}
		case err := <-st.failed:
			return err
		}
	}
	return nil
}

// fail reports an error that ends the send; only the first one counts.
func (st *striper) fail(err error) {
	select {
	case st.failed <- err:
	default:
	}
}

// readAll reads and hashes every chunk in order, and passes those the
// receiver lacks to the writers.
func (st *striper) readAll(have Bitmap) {
	s := st.s
	for i := range s.offer.Chunks() {
		buf, ok := st.buffer()
		if !ok {
			return
		}
		data, hash, err := s.readChunk(i, buf)
		if err != nil {
			st.fail(err)
			return
		}
		s.mu.Lock()
		s.hashes[i] = hash
		s.hashed = i + 1
		s.mu.Unlock()
		if have.Has(i) {
			st.free <- buf
			continue
		}
		select {
		case st.ready <- job{index: uint32(i), data: data, hash: hash, pooled: true}:
		case <-st.done:
			return
		}
	}
	close(st.ready)
	close(st.read)
}

// buffer returns a free pool buffer, making one while fewer than limit
// exist; false once the send is over.
func (st *striper) buffer() ([]byte, bool) {
	select {
	case b := <-st.free:
		return b, true
	default:
	}
	if st.bufs < st.limit {
		st.bufs++
		return make([]byte, min(uint64(st.s.offer.ChunkSize), st.s.offer.Size)), true
	}
	select {
	case b := <-st.free:
		return b, true
	case <-st.done:
		return nil, false
	}
}

// again queues chunk i to be sent again, on whichever stream is free.
func (st *striper) again(i uint32) {
	st.s.lost(i)
	st.mu.Lock()
	st.queue = append(st.queue, i)
	st.mu.Unlock()
	signal(st.wake)
}

// pop takes a chunk to send again, if any.
func (st *striper) pop() (uint32, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.queue) == 0 {
		return 0, false
	}
	i := st.queue[0]
	st.queue = st.queue[1:]
	if len(st.queue) > 0 {
		signal(st.wake) // another writer may take the next one
	}
	return i, true
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// take returns the next job for a writer: a chunk to send again first,
// else the next one read ahead. It returns false once the send is over
// (or failed reading a chunk again), and errLaneLost once lost is
// closed.
func (st *striper) take(ready *chan job, lost <-chan struct{}) (job, bool, error) {
	for {
		if i, ok := st.pop(); ok {
			j, err := st.s.reread(i)
			if err != nil {
				st.fail(err)
			}
			return j, err == nil, err
		}
		select {
		case j, ok := <-*ready:
			if !ok {
				*ready = nil // every chunk was read: only resends are left
				continue
			}
			return j, true, nil
		case <-st.wake:
		case <-st.done:
			return job{}, false, nil
		case <-lost:
			return job{}, false, errLaneLost
		}
	}
}

// write writes jobs on one stream until the send is over or the stream
// fails, and reports how it ended. lost, when closed, says the
// receiver's side of a lane stopped.
func (st *striper) write(lane int, w Stream, lost <-chan struct{}) {
	s := st.s
	ready := st.ready
	var written []uint32 // not known to be ACKed
	for {
		j, ok, err := st.take(&ready, lost)
		if !ok {
			st.ended <- writerEnd{lane: lane, err: err, unacked: s.unacked(written)}
			return
		}
		if s.isAcked(j.index) {
			st.recycle(j)
			continue
		}
		err = s.writeChunk(w, j)
		st.recycle(j)
		written = append(written, j.index)
		if err != nil {
			st.ended <- writerEnd{lane: lane, err: err, unacked: s.unacked(written)}
			return
		}
		s.sent.Add(int64(len(j.data)))
		if len(written) >= pruneWritten {
			written = s.unacked(written)
		}
	}
}

// progressPiece is how much of a chunk's data a writer hands QUIC at a
// time, counting each piece towards Progress once written: QUIC takes a
// write once it has sent it, so the count follows the wire. At 1 Mbit/s
// a piece is half a second of one lane.
const progressPiece = 64 << 10

// writeChunk writes chunk j on w, piece by piece, counting what went.
func (s *sender) writeChunk(w Stream, j job) error {
	if err := writeChunkHead(w, s.version, j.index, j.hash, len(j.data)); err != nil {
		return err
	}
	for data := j.data; len(data) > 0; {
		n := min(len(data), progressPiece)
		if _, err := w.Write(data[:n]); err != nil {
			return err
		}
		s.wrote(j.index, int64(n))
		data = data[n:]
	}
	return nil
}

// pruneWritten is how many chunks a writer remembers before it forgets
// those ACKed: a lane holds at most its flow-control window unACKed, a
// few chunks.
const pruneWritten = 64

// recycle gives a pool buffer back.
func (st *striper) recycle(j job) {
	if j.pooled {
		st.free <- j.data[:cap(j.data)]
	}
}

// unacked returns the chunks of list not ACKed yet, in a new slice.
func (s *sender) unacked(list []uint32) []uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint32
	for _, i := range list {
		if !s.acked.Has(int(i)) {
			out = append(out, i)
		}
	}
	return out
}

// openLanes asks for n lanes and starts a writer on each that opens.
func (st *striper) openLanes(ctx context.Context, n int) {
	s := st.s
	for k, lane := range s.src.Lanes(ctx, n) {
		if ctx.Err() != nil || writeFrame(lane, s.version, Lane{ID: s.offer.ID}) != nil {
			lane.CancelWrite(streamCancelled)
			lane.CancelRead(streamCancelled)
			continue
		}
		st.mu.Lock()
		st.lanes++
		st.mu.Unlock()
		lost := make(chan struct{})
		st.wg.Go(func() { watchLane(lane, lost) })
		st.wg.Go(func() {
			st.write(k+1, lane, lost)
			lane.Close()
			lane.CancelRead(streamDone)
		})
	}
}

// watchLane reads what the receiver says on a lane: nothing, until it
// closes the lane. An ABORT, or the stream breaking, closes lost, and
// the lane's writer stops. It returns when the stream is done.
func watchLane(lane Stream, lost chan<- struct{}) {
	defer close(lost)
	var buf [headerLen]byte
	lane.Read(buf[:]) // any byte is an ABORT or an end
	io.Copy(io.Discard, lane)
}

// reread reads chunk i again, to send it again: it must be as it was.
func (s *sender) reread(i uint32) (job, error) {
	s.mu.Lock()
	hashed, want := s.hashed, s.hashes[min(int(i), len(s.hashes)-1)]
	s.mu.Unlock()
	if int(i) >= hashed {
		return job{}, protocolError(fmt.Sprintf("NAK of chunk %d, not sent yet", i), Nak{})
	}
	data, hash, err := s.readChunk(int(i), make([]byte, s.offer.ChunkLen(int(i))))
	if err != nil {
		return job{}, err
	}
	if hash != want {
		return job{}, &Error{Code: CodeSourceChanged, Reason: "the file changed while it was sent"}
	}
	return job{index: i, data: data, hash: hash}, nil
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
	return data, sum(s.version, data), nil
}
