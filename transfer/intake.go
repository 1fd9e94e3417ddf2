package transfer

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// The intake of a file being received: its OFFER's stream and its lanes
// each read CHUNKs piece by piece into the staging file, hashing as they
// go (stream.go); a chunk whose hash matches is handed to the sync loop,
// which makes chunks durable, records them and ACKs them in batches on
// the OFFER's stream. Data is written before it is verified, but only
// where no held chunk lies: a chunk that fails verification is not
// recorded, so it is asked for again and overwritten, and a crash leaves
// nothing recorded that was not verified.

// minPiece is the smallest piece a stream reads a chunk in: reads much
// smaller than QUIC's own frames would cost more calls than they save
// memory.
const minPiece = 16 << 10

// maxNaks bounds the NAKs of one transfer, whatever chunks they are
// for: a path that corrupts more is broken, and the bound keeps what a
// peer sending garbage under many indexes costs (a counter each) small.
const maxNaks = 64

// intake is where the chunks of one file go while it is received.
type intake struct {
	written chan chunkDone // verified chunks, to the sync loop
	// ended is set, before written closes, when the OFFER's stream
	// brought END: the chunks the sync loop has not taken by then go
	// to finish unrecorded (see syncLoop).
	ended    atomic.Bool
	piece    int            // bytes a stream reads at a time
	maxLanes int            // lanes it takes
	stop     chan struct{}  // closed when the intake closes
	wg       sync.WaitGroup // the lanes' readers
	// in.mu guards following
	lanes []Stream
	fatal error // what a lane met that ends the whole transfer
}

type chunkDone struct {
	index uint32
	hash  Hash
}

// pieces splits a receive buffer of size bytes among the streams of a
// file of version v: one piece each for the OFFER's stream and for as
// many lanes as the buffer has pieces of at least minPiece, up to
// MaxLanes. A file striped over lanes thus takes no more memory than
// one on its OFFER's stream alone.
func pieces(size int, v uint8) (piece, lanes int) {
	if v < 2 {
		return size, 0
	}
	lanes = min(MaxLanes, size/minPiece-1)
	if lanes <= 0 {
		return size, 0
	}
	return size / (lanes + 1), lanes
}

// openIntake makes the file take chunks, from its OFFER's stream and
// from lanes that join from now on.
func (in *incoming) openIntake() {
	piece, lanes := pieces(int(in.bufferSize()), in.version)
	it := &intake{written: make(chan chunkDone, 16), piece: piece, maxLanes: lanes, stop: make(chan struct{})}
	in.mu.Lock()
	in.intake, in.claims, in.naks = it, map[uint32]chan struct{}{}, map[uint32]int{}
	in.mu.Unlock()
}

// closeIntake stops taking chunks: it refuses lanes from now on, stops
// those that joined and waits for them, and then tells the sync loop
// that no more chunks come. It returns what a lane met that ends the
// transfer, if anything.
func (in *incoming) closeIntake() error {
	in.mu.Lock()
	it := in.intake
	in.intake = nil
	in.mu.Unlock()
	if it == nil {
		return nil
	}
	close(it.stop)
	for _, lane := range it.lanes {
		lane.CancelRead(streamDone)
	}
	it.wg.Wait()
	close(it.written)
	return it.fatal
}

// receiveChunks takes CHUNKs until END on the OFFER's stream, and on the
// lanes that join meanwhile. Verified chunks are written at once; a
// second goroutine makes them durable, records them, and ACKs them in
// batches, so the disk's flushes overlap the network.
func (in *incoming) receiveChunks(r *Reader) (End, error) {
	it := in.intake
	synced := make(chan error, 1)
	go func() { synced <- in.syncLoop(it) }()
	end, err := in.readStream(r, make([]byte, it.piece), false)
	it.ended.Store(err == nil)
	if fatal := in.closeIntake(); fatal != nil {
		err = fatal // the reason the OFFER's stream was stopped
	}
	if serr := <-synced; serr != nil {
		return End{}, serr // the reason the reader was stopped
	}
	return end, err
}

// joinLane gives a stream that opened with LANE to the file it names,
// which must be arriving from peer.
func (rc *Receiver) joinLane(peer string, id ID, lane Stream, r *Reader) error {
	in := rc.receiving(peer + "/" + id.String())
	if in == nil {
		refusal := &Error{Code: CodeBusy, Reason: "no such file is arriving"}
		abort(lane, r.Version(), refusal)
		return fmt.Errorf("lane of %s: %w", id, refusal)
	}
	return in.takeLane(lane, r)
}

// takeLane reads the chunks of a lane that joined the file until the
// lane ends. What breaks the protocol or the disk ends the whole
// transfer; a lane that merely breaks ends alone.
func (in *incoming) takeLane(lane Stream, r *Reader) error {
	in.mu.Lock()
	it := in.intake
	var refusal *Error
	switch {
	case it == nil:
		refusal = &Error{Code: CodeBusy, Reason: "the file is not taking chunks"}
	case r.Version() != in.version:
		refusal = &Error{Code: CodeProtocol, Reason: fmt.Sprintf("a lane of version %d for a file of version %d", r.Version(), in.version)}
	case len(it.lanes) >= it.maxLanes:
		refusal = &Error{Code: CodeBusy, Reason: fmt.Sprintf("the file has %d lanes already", len(it.lanes))}
	default:
		it.lanes = append(it.lanes, lane)
		it.wg.Add(1)
	}
	in.mu.Unlock()
	if refusal != nil {
		abort(lane, r.Version(), refusal)
		return fmt.Errorf("lane of %s: %w", in.name, refusal)
	}
	defer it.wg.Done()
	r.SetLimit(TypeChunk, chunkFixedLen+int(in.bufferSize()))
	r.SetLimit(TypeAccept, 0)
	_, err := in.readStream(r, make([]byte, it.piece), true)
	var te *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te) && !te.Remote:
		abort(lane, in.version, te)
		in.mu.Lock()
		if it.fatal == nil {
			it.fatal = te
		}
		in.mu.Unlock()
		in.stream.CancelRead(streamCancelled) // stop the OFFER's stream too
		return err
	}
	in.log.Debug("lane ended", "file", in.name, "err", err)
	return nil
}

// readStream takes CHUNKs from one stream of the file, reading them
// piece by piece through buf, until END on the OFFER's stream, or until
// a lane ends between frames.
func (in *incoming) readStream(r *Reader, buf []byte, lane bool) (End, error) {
	ends := 0
	for {
		f, head, err := r.NextStreamed()
		if lane && errors.Is(err, io.EOF) {
			return End{}, nil
		}
		if err != nil {
			return End{}, in.readError(err)
		}
		if head != nil {
			if err := in.takeChunk(r, head, buf); err != nil {
				return End{}, err
			}
			continue
		}
		switch f := f.(type) {
		case End:
			if ends++; !lane && in.awaitsResend(ends) {
				continue // the NAKed chunk comes again, then END again
			}
			if !lane {
				return f, nil
			}
		case Abort:
			return End{}, remoteError(f.Code, f.Reason)
		}
		return End{}, protocolError("frame during chunks", f)
	}
}

// takeChunk reads the data of a CHUNK into the staging file and hands
// it to the sync loop once its hash matches. A chunk held already, or
// written meanwhile by another stream, is skipped.
func (in *incoming) takeChunk(r *Reader, head *ChunkHead, buf []byte) error {
	i := int(head.Index)
	if i >= in.offer.Chunks() || head.Len != in.offer.ChunkLen(i) {
		return &Error{Code: CodeProtocol, Reason: fmt.Sprintf("chunk %d of %d bytes does not fit the offer", i, head.Len)}
	}
	it, ok := in.claim(head.Index)
	if !ok {
		return nil // NextStreamed skips its data
	}
	h := newHash(in.version)
	off := int64(i) * int64(in.offer.ChunkSize)
	var arrived int64 // counted towards Progress while on its way
	for {
		n, err := r.ReadData(buf)
		if n > 0 {
			h.Write(buf[:n])
			if _, werr := in.file.WriteAt(buf[:n], off); werr != nil {
				in.unclaim(head.Index, false)
				in.arrived(-arrived)
				return writeError(werr)
			}
			off += int64(n)
			arrived += int64(n)
			in.arrived(int64(n))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			in.unclaim(head.Index, false)
			in.arrived(-arrived)
			return in.readError(err)
		}
	}
	if Hash(h.Sum(nil)) != head.Hash {
		in.unclaim(head.Index, false)
		in.arrived(-arrived)
		return in.nak(head.Index)
	}
	in.unclaim(head.Index, true)
	select {
	case it.written <- chunkDone{head.Index, head.Hash}:
		return nil
	case <-it.stop:
		return errors.New("the intake closed")
	}
}

// claim marks chunk i as being read by the calling stream. It reports
// false, and the chunk is to be skipped, when i is held already or the
// intake closed; while another stream reads i, it waits for that one's
// outcome.
func (in *incoming) claim(i uint32) (*intake, bool) {
	for {
		in.mu.Lock()
		it := in.intake
		if it == nil || in.have.Has(int(i)) {
			in.mu.Unlock()
			return nil, false
		}
		busy, ok := in.claims[i]
		if !ok {
			in.claims[i] = make(chan struct{})
			in.mu.Unlock()
			return it, true
		}
		in.mu.Unlock()
		select {
		case <-busy:
		case <-it.stop:
			return nil, false
		}
	}
}

// unclaim ends a stream's claim on chunk i; held says the chunk was
// written and verified: no stream writes it again.
func (in *incoming) unclaim(i uint32, held bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if held {
		in.have.Set(int(i))
	}
	close(in.claims[i])
	delete(in.claims, i)
}

// nak asks for chunk i again, unless it or the whole file failed
// verification too often.
func (in *incoming) nak(i uint32) error {
	in.mu.Lock()
	in.naks[i]++
	in.nakAll++
	times, all := in.naks[i], in.nakAll
	in.mu.Unlock()
	if times > maxChunkRetries || all > maxNaks {
		return &Error{Code: CodeCorrupt, Reason: fmt.Sprintf("chunk %d arrived corrupt %d times (%d corrupt chunks in all)", i, times, all)}
	}
	in.log.Debug("chunk failed verification; asking again", "file", in.rec.Name, "chunk", i)
	return in.writeFrame(Nak{Index: i, Reason: "hash mismatch"})
}

// readError explains why no frame could be read: a frame that breaks
// the format or the offer's limits is a protocol error the peer is told
// of; a stream that ended is not.
func (in *incoming) readError(err error) error {
	if errors.Is(err, ErrMalformed) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrVersion) {
		return &Error{Code: CodeProtocol, Reason: fmt.Sprintf("receive %s: %v", in.rec.Name, err), cause: err}
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("receive %s: %w", in.rec.Name, err)
}

// Batching of flushes. Each flush (fsync plus a database commit) costs a
// few milliseconds whatever its size, so a fast stream is flushed every
// syncBatchBytes; a slow one, whose chunks come further apart than
// syncIdleGap, is flushed chunk by chunk. Either way a crash loses little:
// at most syncBatchBytes of received data is sent again.
const (
	syncBatchBytes = 8 << 20
	syncIdleGap    = 5 * time.Millisecond
)

// syncLoop makes written chunks durable, records them, then ACKs them,
// in batches. An ACK that cannot be written (the stream's write side is
// gone) stops the ACKs only: what the readers still write is made
// durable and recorded all the same, so a resume does not send it again.
// Only a failed flush or record stops recording, and the readers with it.
//
// The last batch, gathered as END came (a small file sent whole comes
// with its END), is made durable but neither recorded nor ACKed: finish
// takes its hashes (in.unrecorded) and records the file received, which
// forgets its chunks at once, so recording them first would cost a
// commit for nothing. Should finish fail, it records them then; a crash
// before that leaves them unrecorded, and they are sent again.
func (in *incoming) syncLoop(it *intake) error {
	idle := time.NewTimer(syncIdleGap)
	defer idle.Stop()
	var ackErr error
	for {
		batch, closed := in.nextBatch(it.written, idle)
		if batch == nil {
			return ackErr
		}
		if closed && it.ended.Load() && ackErr == nil {
			return in.holdUnrecorded(batch)
		}
		indexes, err := in.commitBatch(batch)
		if err != nil {
			in.stream.CancelRead(streamCancelled) // stop the reader
			for range it.written {
				// Let the readers finish; their chunks stay unrecorded
				// and will be sent again.
			}
			return err
		}
		if ackErr == nil {
			ackErr = in.writeFrame(Ack{Indexes: indexes})
		}
	}
}

// nextBatch waits for a written chunk and gathers those that follow it
// closely, up to syncBatchBytes or MaxAckBatch chunks; closed says
// written closed after them. It returns nil once written is closed and
// empty.
func (in *incoming) nextBatch(written <-chan chunkDone, idle *time.Timer) (batch []chunkDone, closed bool) {
	c, ok := <-written
	if !ok {
		return nil, true
	}
	batch = []chunkDone{c}
	bytes := in.offer.ChunkLen(int(c.index))
	for bytes < syncBatchBytes && len(batch) < MaxAckBatch {
		idle.Reset(syncIdleGap)
		select {
		case c, ok := <-written:
			if !ok {
				return batch, true
			}
			batch = append(batch, c)
			bytes += in.offer.ChunkLen(int(c.index))
		case <-idle.C:
			return batch, false
		}
	}
	return batch, false
}

// holdUnrecorded makes the last batch durable and keeps its hashes for
// finish, which records the file received (see syncLoop).
func (in *incoming) holdUnrecorded(batch []chunkDone) error {
	if err := in.file.Sync(); err != nil {
		return writeError(err)
	}
	in.unrecorded = make(map[uint32]Hash, len(batch))
	for _, c := range batch {
		in.unrecorded[c.index] = c.hash
	}
	in.count(batch)
	return nil
}

// commitBatch makes a batch durable and records it; it returns the
// indexes to ACK.
func (in *incoming) commitBatch(batch []chunkDone) ([]uint32, error) {
	if err := in.file.Sync(); err != nil {
		return nil, writeError(err)
	}
	indexes := make([]uint32, len(batch))
	hashes := make([][]byte, len(batch))
	for k, c := range batch {
		indexes[k], hashes[k] = c.index, c.hash[:]
	}
	if err := in.rc.Journal.RecordChunks(in.peer, in.rec.ID, indexes, hashes); err != nil {
		return nil, &Error{Code: CodeIO, Reason: err.Error()}
	}
	in.count(batch)
	return indexes, nil
}

// count counts a durable batch as held, for Progress.
func (in *incoming) count(batch []chunkDone) {
	var n int64
	for _, c := range batch {
		n += int64(in.offer.ChunkLen(int(c.index)))
	}
	in.done += n
	// On their way no more, then held: a report in between shows a
	// little less, never more than the file.
	in.flying.Add(-n)
	in.held.Store(in.done)
	in.arrived(0)
}

// arrived counts n more bytes of chunks on their way (n < 0: fewer)
// and reports how far the file has gone: held plus on its way (see
// Progress).
func (in *incoming) arrived(n int64) {
	flying := in.flying.Add(n)
	in.rc.reportProgress(in.rec, in.held.Load()+flying)
}
