package transfer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/punchdrop/punchdrop/store"
)

// StagingDir is the folder inside downloads where files grow until they
// are complete. Nothing outside it is ever partly written.
const StagingDir = ".punchdrop"

// StaleAfter is how long an interrupted incoming transfer waits for its
// sender to resume it, and how long a finished one is remembered (to
// answer a sender that missed our END_ACK), before Clean forgets it.
const StaleAfter = 30 * 24 * time.Hour

// Receiver takes files from peers into one downloads folder.
type Receiver struct {
	Store     *store.Store
	Downloads *os.Root // the downloads folder; nothing is written outside it
	Log       *slog.Logger
	// Progress, if not nil, is told about bytes held durably.
	Progress func(in store.Incoming, done int64)
	// Folder, if not nil, names the subfolder of Downloads that a peer's
	// files go into, or "" for Downloads itself.
	Folder func(peer string) string

	mu     sync.Mutex // guards following
	active map[string]bool
}

// Receive answers one OFFER from peer on stream and takes the file. It
// returns the transfer's record; on success its Final is the file's name
// relative to the downloads folder. Unless the sender refused for good,
// what arrived stays staged for the next offer to resume.
func (rc *Receiver) Receive(ctx context.Context, peer string, stream Stream) (store.Incoming, error) {
	defer guard(ctx, stream)()
	r := NewReader(stream)
	first, err := r.Next()
	if err != nil {
		code := CodeProtocol
		if errors.Is(err, ErrVersion) {
			code = CodeVersion
		}
		reject(stream, code, err.Error())
		return store.Incoming{}, fmt.Errorf("read offer: %w", err)
	}
	offer, ok := first.(Offer)
	if !ok {
		if a, isAbort := first.(Abort); isAbort {
			return store.Incoming{}, &Error{Code: a.Code, Reason: a.Reason, Remote: true}
		}
		err := protocolError("first frame", first)
		reject(stream, err.Code, err.Reason)
		return store.Incoming{}, err
	}
	key := peer + "/" + offer.ID.String()
	if !rc.claim(key) {
		reject(stream, CodeBusy, "this file is already being received")
		return store.Incoming{}, fmt.Errorf("offer %s: already being received", offer.Name)
	}
	defer rc.release(key)

	in := &incoming{rc: rc, peer: peer, stream: stream, offer: offer, log: rc.logger()}
	err = in.run(r)
	var te *Error
	if errors.As(err, &te) && !te.Remote {
		if in.accepted {
			abort(stream, te)
		} else {
			reject(stream, te.Code, te.Reason)
		}
	}
	return in.rec, err
}

func (rc *Receiver) logger() *slog.Logger {
	if rc.Log == nil {
		return slog.Default()
	}
	return rc.Log
}

// claim marks a transfer as being received, so a second offer of it (the
// sender reconnected before the old stream died) waits its turn.
func (rc *Receiver) claim(key string) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.active == nil {
		rc.active = map[string]bool{}
	}
	if rc.active[key] {
		return false
	}
	rc.active[key] = true
	return true
}

func (rc *Receiver) release(key string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	delete(rc.active, key)
}

func reject(stream Stream, code Code, reason string) {
	abort(stream, &Error{Code: code, Reason: reason})
}

// incoming is one file being received.
type incoming struct {
	rc       *Receiver
	peer     string
	stream   Stream
	offer    Offer
	log      *slog.Logger
	rec      store.Incoming
	file     *os.File
	have     Bitmap
	hashes   []Hash
	done     int64 // bytes held durably
	accepted bool  // ACCEPT was sent: refusals from now on are ABORTs

	writeMu sync.Mutex // one writer of frames at a time: ACKs and NAKs
}

func (in *incoming) run(r *Reader) error {
	name, err := SafeRelPath(in.offer.Name)
	if err != nil {
		return &Error{Code: CodeRefused, Reason: err.Error()}
	}
	if in.rc.Folder != nil {
		if folder, err := SafeRelPath(in.rc.Folder(in.peer)); err == nil {
			name = path.Join(folder, name)
		}
	}
	if err := in.prepare(name); err != nil {
		return err
	}
	defer func() {
		if in.file != nil {
			in.file.Close()
		}
	}()
	if in.rec.State == store.StateDone {
		return in.confirmDone(r)
	}
	if err := in.writeFrame(Accept{Have: in.have}); err != nil {
		return fmt.Errorf("accept %s: %w", in.offer.Name, err)
	}
	in.accepted = true
	in.rc.reportProgress(in.rec, in.done)

	end, err := in.receiveChunks(r)
	if err != nil {
		return err
	}
	return in.finish(end)
}

// prepare finds what an earlier attempt left of this transfer, or starts
// it afresh, and makes room for the whole file.
func (in *incoming) prepare(name string) error {
	id := in.offer.ID.String()
	in.have = NewBitmap(in.offer.Chunks())
	in.hashes = make([]Hash, in.offer.Chunks())
	rec, err := in.rc.Store.IncomingTransfer(in.peer, id, func(i uint32, h []byte) {
		if int(i) < len(in.hashes) && len(h) == HashLen {
			in.have.Set(int(i))
			in.hashes[i] = Hash(h)
		}
	})
	switch {
	case err == nil && sameVersion(rec, in.offer):
		in.rec = rec
		if rec.State == store.StateDone {
			return nil
		}
		if _, err := in.rc.Downloads.Stat(rec.Staging); err != nil {
			in.log.Warn("staging file gone; starting over", "file", rec.Name, "err", err)
			return in.start(name)
		}
	case err == nil || errors.Is(err, store.ErrNotFound):
		if err == nil {
			in.log.Info("file changed since the last attempt; starting over", "file", rec.Name)
			in.rc.Downloads.Remove(rec.Staging)
		}
		return in.start(name)
	default:
		return &Error{Code: CodeIO, Reason: err.Error()}
	}
	for i := range in.offer.Chunks() {
		if in.have.Has(i) {
			in.done += int64(in.offer.ChunkLen(i))
		}
	}
	return in.openStaging()
}

func sameVersion(rec store.Incoming, o Offer) bool {
	return rec.Size == int64(o.Size) && rec.ChunkSize == int(o.ChunkSize) && rec.ModTime.Equal(o.ModTime)
}

// start records a new transfer and creates its staging file.
func (in *incoming) start(name string) error {
	now := time.Now()
	in.have = NewBitmap(in.offer.Chunks())
	in.hashes = make([]Hash, in.offer.Chunks())
	in.done = 0
	in.rec = store.Incoming{
		ID: in.offer.ID.String(), Peer: in.peer, Name: name,
		Size: int64(in.offer.Size), ChunkSize: int(in.offer.ChunkSize),
		ModTime: in.offer.ModTime, Mode: uint32(in.offer.Mode.Perm()),
		Staging: path.Join(StagingDir, shortPeer(in.peer)+"-"+in.offer.ID.String()+".part"),
		State:   store.StateReceiving, Started: now, Updated: now,
	}
	if err := in.rc.Downloads.MkdirAll(StagingDir, 0o700); err != nil {
		return &Error{Code: CodeIO, Reason: fmt.Sprintf("create staging folder: %v", err)}
	}
	in.rc.Downloads.Remove(in.rec.Staging)
	if err := in.rc.Store.StartIncoming(in.rec); err != nil {
		return &Error{Code: CodeIO, Reason: err.Error()}
	}
	return in.openStaging()
}

func shortPeer(id string) string { return id[:min(len(id), 8)] }

// openStaging opens the staging file and reserves the file's full size
// on disk, so a lack of space shows now, as a clear refusal, rather than
// halfway through.
func (in *incoming) openStaging() error {
	f, err := in.rc.Downloads.OpenFile(in.rec.Staging, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return &Error{Code: CodeIO, Reason: fmt.Sprintf("open staging file: %v", err)}
	}
	in.file = f
	if err := reserve(f, int64(in.offer.Size)); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			return &Error{Code: CodeNoSpace, Reason: fmt.Sprintf("not enough disk space for %s (%s)", in.rec.Name, FormatBytes(int64(in.offer.Size)))}
		}
		return &Error{Code: CodeIO, Reason: fmt.Sprintf("reserve space: %v", err)}
	}
	return nil
}

// receiveChunks takes CHUNKs until END. Verified chunks are written at
// once; a second goroutine makes them durable, records them, and ACKs
// them in batches, so the disk's flushes overlap the network.
func (in *incoming) receiveChunks(r *Reader) (End, error) {
	written := make(chan chunkDone, 16)
	synced := make(chan error, 1)
	go func() { synced <- in.syncLoop(written) }()
	end, err := in.readChunks(r, written)
	close(written)
	if serr := <-synced; serr != nil {
		return End{}, serr // the reason the reader was stopped
	}
	return end, err
}

type chunkDone struct {
	index uint32
	hash  Hash
}

func (in *incoming) readChunks(r *Reader, written chan<- chunkDone) (End, error) {
	naks := map[uint32]int{}
	for {
		f, err := r.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return End{}, fmt.Errorf("receive %s: %w", in.rec.Name, err)
		}
		switch f := f.(type) {
		case Chunk:
			i := int(f.Index)
			if i >= in.offer.Chunks() || len(f.Data) != in.offer.ChunkLen(i) {
				return End{}, &Error{Code: CodeProtocol, Reason: fmt.Sprintf("chunk %d of %d bytes does not fit the offer", i, len(f.Data))}
			}
			if sha256.Sum256(f.Data) != f.Hash {
				naks[f.Index]++
				if naks[f.Index] > maxChunkRetries {
					return End{}, &Error{Code: CodeCorrupt, Reason: fmt.Sprintf("chunk %d arrived corrupt %d times", i, naks[f.Index])}
				}
				in.log.Warn("chunk failed verification; asking again", "file", in.rec.Name, "chunk", i)
				if err := in.writeFrame(Nak{Index: f.Index, Reason: "hash mismatch"}); err != nil {
					return End{}, err
				}
				continue
			}
			if _, err := in.file.WriteAt(f.Data, int64(i)*int64(in.offer.ChunkSize)); err != nil {
				return End{}, writeError(err)
			}
			written <- chunkDone{f.Index, f.Hash}
		case End:
			return f, nil
		case Abort:
			return End{}, &Error{Code: f.Code, Reason: f.Reason, Remote: true}
		default:
			return End{}, protocolError("frame during chunks", f)
		}
	}
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
// gone) stops the ACKs only: what the reader still writes is made
// durable and recorded all the same, so a resume does not send it again.
// Only a failed flush or record stops recording, and the reader with it.
func (in *incoming) syncLoop(written <-chan chunkDone) error {
	idle := time.NewTimer(syncIdleGap)
	defer idle.Stop()
	var ackErr error
	for {
		batch := in.nextBatch(written, idle)
		if batch == nil {
			return ackErr
		}
		indexes, err := in.commitBatch(batch)
		if err != nil {
			in.stream.CancelRead(streamCancelled) // stop the reader
			for range written {
				// Let the reader finish; its chunks stay unrecorded and
				// will be sent again.
			}
			return err
		}
		if ackErr == nil {
			ackErr = in.writeFrame(Ack{Indexes: indexes})
		}
	}
}

// nextBatch waits for a written chunk and gathers those that follow it
// closely, up to syncBatchBytes or MaxAckBatch chunks. It returns nil
// once written is closed and empty.
func (in *incoming) nextBatch(written <-chan chunkDone, idle *time.Timer) []chunkDone {
	c, ok := <-written
	if !ok {
		return nil
	}
	batch := []chunkDone{c}
	bytes := in.offer.ChunkLen(int(c.index))
	for bytes < syncBatchBytes && len(batch) < MaxAckBatch {
		idle.Reset(syncIdleGap)
		select {
		case c, ok := <-written:
			if !ok {
				return batch
			}
			batch = append(batch, c)
			bytes += in.offer.ChunkLen(int(c.index))
		case <-idle.C:
			return batch
		}
	}
	return batch
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
	if err := in.rc.Store.RecordChunks(in.peer, in.rec.ID, indexes, hashes); err != nil {
		return nil, &Error{Code: CodeIO, Reason: err.Error()}
	}
	for _, c := range batch {
		if !in.have.Has(int(c.index)) {
			in.have.Set(int(c.index))
			in.hashes[c.index] = c.hash
			in.done += int64(in.offer.ChunkLen(int(c.index)))
		}
	}
	in.rc.reportProgress(in.rec, in.done)
	return indexes, nil
}

// finish checks the whole file and moves it under its final name.
func (in *incoming) finish(end End) error {
	if n := in.have.Count(); n != in.offer.Chunks() {
		return &Error{Code: CodeProtocol, Reason: fmt.Sprintf("END after %d of %d chunks", n, in.offer.Chunks())}
	}
	if Root(in.hashes) != end.Root {
		// The chunks kept from an earlier attempt are of another version
		// of the file: drop them all and let the sender start over.
		in.discard()
		return &Error{Code: CodeCorrupt, Reason: "whole-file hash mismatch; starting over"}
	}
	if err := in.seal(); err != nil {
		return err
	}
	final, err := Commit(in.rc.Downloads, in.rec.Staging, in.rec.Name)
	if err != nil {
		return &Error{Code: CodeIO, Reason: fmt.Sprintf("move into downloads: %v", err)}
	}
	// The new name must survive a crash; the staging name need not stay
	// gone: Clean removes a staging file no transfer claims.
	syncDir(in.rc.Downloads, path.Dir(final))
	err = in.rc.Store.UpdateIncoming(in.peer, in.rec.ID, func(r *store.Incoming) {
		r.State, r.Final, r.Updated = store.StateDone, final, time.Now()
	})
	if err != nil {
		in.log.Error("file received but not recorded", "file", final, "err", err)
	}
	in.rec.State, in.rec.Final = store.StateDone, final
	in.log.Info("file received", "file", final, "size", in.offer.Size, "peer", shortPeer(in.peer))
	return in.writeFrame(EndAck{Name: final})
}

// Mode bits a received file never keeps, whatever the sender's: no one
// else may write it, and nothing received may be run (a peer's execute
// bits would make a download a program, whose name may hide its type).
// The owner can always read and write it.
const (
	droppedModeBits fs.FileMode = 0o022 | 0o111
	ownerModeBits   fs.FileMode = 0o600
)

// seal gives the staging file the sender's mode, defused, and time. Its
// data is durable already: every chunk was flushed before it was
// recorded.
func (in *incoming) seal() error {
	mode := fs.FileMode(in.rec.Mode).Perm()&^droppedModeBits | ownerModeBits
	if err := in.file.Chmod(mode); err != nil {
		return &Error{Code: CodeIO, Reason: err.Error()}
	}
	if err := in.file.Close(); err != nil {
		return writeError(err)
	}
	in.file = nil
	if err := in.rc.Downloads.Chtimes(in.rec.Staging, time.Now(), in.rec.ModTime); err != nil {
		return &Error{Code: CodeIO, Reason: err.Error()}
	}
	return nil
}

// confirmDone answers an offer of a file already received: the sender
// crashed or lost the path before our END_ACK reached it.
func (in *incoming) confirmDone(r *Reader) error {
	all := NewBitmap(in.offer.Chunks())
	for i := range in.offer.Chunks() {
		all.Set(i)
	}
	if err := in.writeFrame(Accept{Have: all}); err != nil {
		return err
	}
	in.accepted = true
	f, err := r.Next()
	if err != nil {
		return fmt.Errorf("receive %s: %w", in.rec.Name, err)
	}
	if _, ok := f.(End); !ok {
		return protocolError("frame after ACCEPT of a received file", f)
	}
	return in.writeFrame(EndAck{Name: in.rec.Final})
}

// discard drops the staging file and record, so the next offer starts
// from nothing.
func (in *incoming) discard() {
	if in.file != nil {
		in.file.Close()
		in.file = nil
	}
	in.rc.Downloads.Remove(in.rec.Staging)
	if err := in.rc.Store.DeleteIncoming(in.peer, in.rec.ID); err != nil {
		in.log.Error("forget transfer", "file", in.rec.Name, "err", err)
	}
}

func (in *incoming) writeFrame(f Frame) error {
	in.writeMu.Lock()
	defer in.writeMu.Unlock()
	if err := WriteFrame(in.stream, f); err != nil {
		return fmt.Errorf("send %s: %w", f.Type(), err)
	}
	return nil
}

func (rc *Receiver) reportProgress(rec store.Incoming, done int64) {
	if rc.Progress != nil {
		rc.Progress(rec, done)
	}
}

// writeError classifies a failed write: a full disk is worth retrying.
func writeError(err error) *Error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &Error{Code: CodeNoSpace, Reason: fmt.Sprintf("disk full: %v", err)}
	}
	return &Error{Code: CodeIO, Reason: fmt.Sprintf("write: %v", err)}
}

// syncDir makes a rename or link in dir durable.
func syncDir(root *os.Root, dir string) {
	if d, err := root.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// FormatBytes prints a size the way people read it: 1.5 MiB.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Refuse answers an offer on stream with a REJECT without reading it,
// for a receiver that cannot take any file now.
func Refuse(stream Stream, code Code, reason string) {
	reject(stream, code, reason)
}

// Clean tidies the staging folder at start-up, before any Receive: it
// removes staging files no transfer claims (a crash between creating one
// and recording it) and forgets transfers untouched for StaleAfter,
// removing their staging files.
func (rc *Receiver) Clean(now time.Time) error {
	records, err := rc.Store.IncomingTransfers()
	if err != nil {
		return fmt.Errorf("clean staging: %w", err)
	}
	claimed := map[string]bool{}
	for _, rec := range records {
		if now.Sub(rec.Updated) < StaleAfter {
			if rec.State != store.StateDone {
				claimed[path.Base(rec.Staging)] = true
			}
			continue
		}
		if err := rc.Store.DeleteIncoming(rec.Peer, rec.ID); err != nil {
			return fmt.Errorf("clean staging: %w", err)
		}
		rc.logger().Info("forgot a stale incoming transfer", "file", rec.Name, "state", rec.State, "updated", rec.Updated)
	}
	entries, err := fs.ReadDir(rc.Downloads.FS(), StagingDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("clean staging: %w", err)
	}
	for _, e := range entries {
		if !claimed[e.Name()] && strings.HasSuffix(e.Name(), ".part") {
			if err := rc.Downloads.Remove(path.Join(StagingDir, e.Name())); err != nil {
				return fmt.Errorf("clean staging: %w", err)
			}
		}
	}
	return nil
}
