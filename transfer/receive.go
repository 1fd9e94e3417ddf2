package transfer

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// StagingDir is the folder inside downloads where files grow until they
// are complete. Nothing outside it is ever partly written.
const StagingDir = ".punchdrop"

// Receiver takes files from peers into one downloads folder.
type Receiver struct {
	Journal   Journal  // what survives a restart
	Downloads *os.Root // the downloads folder; nothing is written outside it
	Log       *slog.Logger
	// Progress, if not nil, is told how far a transfer has gone: bytes
	// held durably, plus those of chunks that arrived and are not held
	// yet (see the sender's Progress).
	Progress func(rec Record, done int64)
	// Folder, if not nil, names the subfolder of Downloads that a peer's
	// files go into, or "" for Downloads itself.
	Folder func(peer string) string

	// Quota, if not nil, bounds what peers may take of the disk and of
	// memory; nil means a Quota of the Receiver's own with the default
	// limits.
	Quota *Quota

	mu       sync.Mutex           // guards following
	active   map[string]*incoming // being received, by peer/ID
	ownQuota *Quota               // made on first use when Quota is nil
}

// Receive answers one OFFER from peer on stream and takes the file. It
// returns the transfer's record; on success its Final is the file's name
// relative to the downloads folder. Unless the sender refused for good,
// what arrived stays staged for the next offer to resume. A stream that
// opens with LANE instead carries chunks of a file being received
// (lanes.go): Receive takes them until the lane ends, and returns an
// empty record.
func (rc *Receiver) Receive(ctx context.Context, peer string, stream Stream) (Record, error) {
	defer guard(ctx, stream)()
	r := NewReader(stream)
	// Until an offer names its chunk size, a CHUNK has no room at all;
	// an ACCEPT (up to 1 MiB) never has.
	r.SetLimit(TypeChunk, 0)
	r.SetLimit(TypeAccept, 0)
	first, err := r.Next()
	if err != nil {
		code := CodeProtocol
		if errors.Is(err, ErrVersion) {
			code = CodeVersion
		}
		reject(stream, versionOr(r.Version()), code, err.Error())
		return Record{}, fmt.Errorf("read offer: %w", err)
	}
	var offer Offer
	switch f := first.(type) {
	case Offer:
		offer = f
	case Lane:
		return Record{}, rc.joinLane(peer, f.ID, stream, r)
	case Abort:
		return Record{}, remoteError(f.Code, f.Reason)
	default:
		err := protocolError("first frame", first)
		reject(stream, r.Version(), err.Code, err.Reason)
		return Record{}, err
	}
	in := &incoming{rc: rc, peer: peer, stream: stream, version: r.Version(), offer: offer, log: rc.logger()}
	key := peer + "/" + offer.ID.String()
	if !rc.claim(ctx, key, in) {
		reject(stream, in.version, CodeBusy, "this file is already being received")
		return Record{}, fmt.Errorf("offer %s: already being received", offer.Name)
	}
	defer rc.release(key)

	err = in.run(r)
	var te *Error
	if errors.As(err, &te) && !te.Remote {
		if in.accepted {
			abort(stream, in.version, te)
		} else {
			reject(stream, in.version, te.Code, te.Reason)
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

// claimWait bounds how long a second offer of a transfer waits for the
// receive that holds it to end. When a session moves to a better path,
// the sender's new offer can arrive over the new path before the old
// session's end has reached that receive (the end travels the old, slower
// path, or the receive is storing a chunk); it lets go within a chunk's
// write. Past the wait, the offer is refused as busy and the sender tries
// again later.
const claimWait = 2 * time.Second

// claim marks a transfer as being received by in, so its lanes find it.
// A second offer of it (the sender reconnected before the old stream
// died) waits its turn, up to claimWait, and is refused (false) if the
// first does not end by then.
func (rc *Receiver) claim(ctx context.Context, key string, in *incoming) bool {
	timeout := time.NewTimer(claimWait)
	defer timeout.Stop()
	in.ended = make(chan struct{})
	for {
		rc.mu.Lock()
		if rc.active == nil {
			rc.active = map[string]*incoming{}
		}
		held := rc.active[key]
		if held == nil {
			rc.active[key] = in
		}
		rc.mu.Unlock()
		if held == nil {
			return true
		}
		select {
		case <-held.ended:
		case <-timeout.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

func (rc *Receiver) release(key string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if in := rc.active[key]; in != nil {
		close(in.ended)
	}
	delete(rc.active, key)
}

// receiving returns the transfer named key if it is being received.
func (rc *Receiver) receiving(key string) *incoming {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.active[key]
}

// quota returns the Quota in force.
func (rc *Receiver) quota() *Quota {
	if rc.Quota != nil {
		return rc.Quota
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.ownQuota == nil {
		rc.ownQuota = NewQuota(DefaultDiskLimits())
	}
	return rc.ownQuota
}

func reject(stream Stream, v uint8, code Code, reason string) {
	abort(stream, v, &Error{Code: code, Reason: reason})
}

// incoming is one file being received.
type incoming struct {
	rc      *Receiver
	peer    string
	stream  Stream // the OFFER's
	version uint8  // the OFFER's, spoken on every stream of the file
	offer   Offer
	name    string // the safe name it will get: messages never show the offered one
	log     *slog.Logger
	rec     Record
	file    *os.File
	done    int64 // bytes held durably; the sync loop's
	// unrecorded holds the hashes of the chunks held durably but not
	// recorded: those that came with END (syncLoop).
	unrecorded map[uint32]Hash
	memory     int64         // receive buffer counted against the Quota
	accepted   bool          // ACCEPT was sent: refusals from now on are ABORTs
	ended      chan struct{} // closed when the receive lets go of the transfer
	// held is done for the streams' goroutines; flying the bytes of
	// chunks read and not held yet (Progress).
	held, flying atomic.Int64

	writeMu sync.Mutex // one writer of frames at a time: ACKs and NAKs

	mu sync.Mutex // guards following
	// have marks the chunks held: recorded, or written, verified and on
	// their way to be recorded. None is written again.
	have   Bitmap
	claims map[uint32]chan struct{} // chunks being read, closed when they are not
	naks   map[uint32]int           // NAKs sent, by chunk
	nakAll int                      // NAKs sent in all
	intake *intake                  // where the streams' chunks go; nil unless taking chunks
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
	in.name = name
	defer in.close()
	if err := in.prepare(name); err != nil {
		return err
	}
	if in.rec.State == Received {
		return in.confirmDone(r)
	}
	r.SetLimit(TypeChunk, chunkFixedLen+int(in.bufferSize()))
	in.openIntake() // before ACCEPT: the sender's lanes follow it
	if err := in.writeFrame(Accept{Have: in.have}); err != nil {
		in.closeIntake()
		return fmt.Errorf("accept %s: %w", in.name, err)
	}
	in.accepted = true
	in.held.Store(in.done)
	in.rc.reportProgress(in.rec, in.done)

	end, err := in.receiveChunks(r)
	if err != nil {
		in.recordUnrecorded() // a lane failed as END came
		return err
	}
	return in.finish(end)
}

// close gives back what the transfer holds while it runs: its staging
// file's handle and its receive buffer's share of the memory budget.
func (in *incoming) close() {
	if in.file != nil {
		in.file.Close()
		in.file = nil
	}
	if in.memory != 0 {
		in.rc.quota().releaseMemory(in.peer, in.memory)
		in.memory = 0
	}
}

// finish checks the whole file and moves it under its final name. If
// that fails, the chunks held but not recorded are recorded, for the
// next offer to resume.
func (in *incoming) finish(end End) (err error) {
	defer func() {
		if err != nil {
			in.recordUnrecorded()
		}
	}()
	if n := in.have.Count(); n != in.offer.Chunks() {
		return &Error{Code: CodeProtocol, Reason: fmt.Sprintf("END after %d of %d chunks", n, in.offer.Chunks())}
	}
	root, err := in.storedRoot()
	if err != nil {
		return err
	}
	if root != end.Root {
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
	if err := in.rc.Journal.FinishIncoming(in.peer, in.rec.ID, final, time.Now()); err != nil {
		in.log.Error("file received but not recorded", "file", final, "err", err)
	}
	in.unrecorded = nil // received: its chunks are not needed any more
	in.rec.State, in.rec.Final = Received, final
	in.log.Info("file received", "file", final, "size", in.offer.Size, "peer", shortPeer(in.peer))
	return in.writeFrame(EndAck{Name: final})
}

// recordUnrecorded records the chunks held durably but not recorded
// (syncLoop), if the transfer still has its record.
func (in *incoming) recordUnrecorded() {
	if len(in.unrecorded) == 0 {
		return
	}
	indexes := make([]uint32, 0, len(in.unrecorded))
	hashes := make([][]byte, 0, len(in.unrecorded))
	for i, h := range in.unrecorded {
		indexes, hashes = append(indexes, i), append(hashes, h[:])
	}
	if err := in.rc.Journal.RecordChunks(in.peer, in.rec.ID, indexes, hashes); err != nil {
		in.log.Warn("record chunks", "file", in.rec.Name, "err", err)
	}
	in.unrecorded = nil
}

// Mode bits a received file never keeps, whatever the sender's: no one
// else may write it, and nothing received may be run (a peer's execute
// bits would make a download a program, whose name may hide its type).
// The owner can always read and write it.
const (
	droppedModeBits fs.FileMode = 0o022 | 0o111
	ownerModeBits   fs.FileMode = 0o600
)

// storedRoot computes the whole-file hash from the chunk hashes the
// journal recorded and those of the last batch, unrecorded, in index
// order: no list of all hashes is kept in memory (for MaxChunks chunks
// it would take 256 MiB).
func (in *incoming) storedRoot() (Hash, error) {
	h := sha256.New()
	next := uint32(0)
	unrecorded := func() {
		for hash, ok := in.unrecorded[next]; ok; hash, ok = in.unrecorded[next] {
			h.Write(hash[:])
			next++
		}
	}
	err := in.rc.Journal.IncomingChunks(in.peer, in.rec.ID, func(i uint32, hash []byte) error {
		unrecorded()
		if i != next || len(hash) != HashLen {
			return fmt.Errorf("chunk %d recorded out of order or damaged", i)
		}
		h.Write(hash)
		next++
		return nil
	})
	unrecorded()
	if err == nil && int(next) != in.offer.Chunks() {
		err = fmt.Errorf("%d of %d chunks recorded", next, in.offer.Chunks())
	}
	if err != nil {
		return Hash{}, &Error{Code: CodeIO, Reason: fmt.Sprintf("whole-file hash: %v", err)}
	}
	return Hash(h.Sum(nil)), nil
}

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
	// From version 3 a small file's CHUNK may come before END (eager.go):
	// it is skipped unread.
	if in.version >= 3 {
		r.SetLimit(TypeChunk, chunkFixedLen+int(in.bufferSize()))
	}
	for {
		f, head, err := r.NextStreamed()
		if err != nil {
			return in.readError(err)
		}
		if head != nil && in.version >= 3 {
			continue
		}
		if head != nil {
			f = Chunk{}
		}
		if _, ok := f.(End); !ok {
			return protocolError("frame after ACCEPT of a received file", f)
		}
		return in.writeFrame(EndAck{Name: in.rec.Final})
	}
}

// discard drops the staging file and record, so the next offer starts
// from nothing.
func (in *incoming) discard() {
	in.unrecorded = nil
	if in.file != nil {
		in.file.Close()
		in.file = nil
	}
	in.rc.Downloads.Remove(in.rec.Staging)
	if err := in.rc.Journal.DeleteIncoming(in.peer, in.rec.ID); err != nil {
		in.log.Error("forget transfer", "file", in.rec.Name, "err", err)
	}
}

func (in *incoming) writeFrame(f Frame) error {
	in.writeMu.Lock()
	defer in.writeMu.Unlock()
	if err := writeFrame(in.stream, in.version, f); err != nil {
		return fmt.Errorf("send %s: %w", f.Type(), err)
	}
	return nil
}

func (rc *Receiver) reportProgress(rec Record, done int64) {
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

// Refuse answers an offer on stream with a REJECT without reading it,
// for a receiver that cannot take any file now. It speaks version
// MinVersion, which every sender reads.
func Refuse(stream Stream, code Code, reason string) {
	reject(stream, MinVersion, code, reason)
}
