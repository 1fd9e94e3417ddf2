package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/punchdrop/punchdrop/bytesize"
)

// Admission: what happens between an OFFER and its ACCEPT. Nothing is
// allocated for an offer, in memory or on disk, and nothing recorded,
// before its size has passed every limit: the peer's (Quota), the free
// space's (statfs before fallocate), and the memory budget's. A refused
// offer leaves nothing behind: no record, no staging file, no blocks.

// prepare finds what an earlier attempt left of this transfer, or
// admits it afresh. When it returns nil, the file's whole size is
// reserved on disk, its record written and its receive buffer counted
// against the memory budget; a file received already needs none of it.
func (in *incoming) prepare(name string) error {
	rec, err := in.rc.Journal.IncomingTransfer(in.peer, in.offer.ID.String())
	switch {
	case errors.Is(err, ErrNoRecord):
		return in.start(name)
	case err != nil:
		return &Error{Code: CodeIO, Reason: err.Error()}
	case !sameVersion(rec, in.offer):
		in.log.Info("file changed since the last attempt; starting over", "file", rec.Name)
		in.rc.forget(rec)
		return in.start(name)
	}
	in.rec = rec
	if rec.State == Received {
		return nil
	}
	return in.resume(name)
}

func sameVersion(rec Record, o Offer) bool {
	return rec.Size == int64(o.Size) && rec.ChunkSize == int(o.ChunkSize) && rec.ModTime.Equal(o.ModTime)
}

// start admits a new transfer (admit), reserves the file's whole size
// in a new staging file, and only then records the transfer.
func (in *incoming) start(name string) error {
	q := in.rc.quota()
	size := int64(in.offer.Size)
	if err := in.admit(q, size); err != nil {
		return err
	}
	defer q.settle(in.peer, size)
	now := time.Now()
	rec := Record{
		ID: in.offer.ID.String(), Peer: in.peer, Name: name,
		Size: size, ChunkSize: int(in.offer.ChunkSize),
		ModTime: in.offer.ModTime, Mode: uint32(in.offer.Mode.Perm()),
		Staging: path.Join(StagingDir, shortPeer(in.peer)+"-"+in.offer.ID.String()+".part"),
		State:   Receiving, Started: now, Updated: now,
	}
	f, err := in.createStaging(rec)
	if err != nil {
		return err
	}
	if err := in.rc.Journal.StartIncoming(rec); err != nil {
		giveBack(in.rc.Downloads, f, rec.Staging)
		return &Error{Code: CodeIO, Reason: err.Error()}
	}
	in.rec, in.file = rec, f
	in.have, in.done = NewBitmap(in.offer.Chunks()), 0
	return nil
}

func shortPeer(id string) string { return id[:min(len(id), 8)] }

// admit checks a new transfer of size bytes against the peer's limits,
// the free space and the memory budget, as one step with any other
// admission, and counts it as pending (until settle) so that the next
// admission sees it before its record exists. Nothing is allocated or
// written; a refusal takes nothing.
func (in *incoming) admit(q *Quota, size int64) error {
	q.admit.Lock()
	defer q.admit.Unlock()
	if err := in.makeRoom(q, size); err != nil {
		return err
	}
	if err := in.checkSpace(q, size); err != nil {
		return err
	}
	if err := in.takeMemory(q); err != nil {
		return err
	}
	q.addPending(in.peer, size)
	return nil
}

// makeRoom checks that the peer stays within its limits with one more
// transfer of size bytes: at most MaxUnfinishedPerPeer unfinished
// transfers and MaxStagedPerPeer bytes staged, counting those admitted
// but not recorded yet. If not, it forgets the peer's own transfers
// untouched for evictableAfter, least recently touched first, until it
// does; when that is not enough, the offer is refused (busy for the
// count, no space for the bytes: both retryable, as the peer's
// transfers finish).
func (in *incoming) makeRoom(q *Quota, size int64) error {
	usage, err := in.rc.Journal.IncomingUsage(in.peer)
	if err != nil {
		return &Error{Code: CodeIO, Reason: err.Error()}
	}
	pending, _ := q.pendingOf(in.peer)
	limit := q.DiskLimits().MaxStagedPerPeer
	count, staged := usage.Unfinished+pending.transfers, usage.Staged+pending.bytes
	fits := func() bool { return count < MaxUnfinishedPerPeer && staged <= limit && size <= limit-staged }
	if !fits() && q.mayBeStale(in.peer, time.Now()) {
		err := in.evictStale(q, func(old Record) bool {
			count, staged = count-1, staged-old.Size
			return fits()
		})
		if err != nil {
			return err
		}
	}
	switch {
	case count >= MaxUnfinishedPerPeer:
		return &Error{Code: CodeBusy, Reason: fmt.Sprintf("%d unfinished files from this peer already; try again once some are done", count)}
	case !fits():
		return &Error{Code: CodeNoSpace, Reason: fmt.Sprintf("not enough disk space for %s (%s): this peer has %s staged already, of the %s it may",
			in.name, bytesize.Format(size), bytesize.Format(staged), bytesize.Format(limit))}
	}
	return nil
}

// evictStale forgets the peer's unfinished transfers untouched for
// evictableAfter, least recently touched first, but none being
// received, until evicted says that is enough. A peer at its limit is
// thus never stuck behind transfers its sender gave up on, and cannot
// evict what it is still sending. When it meets a transfer too recent,
// it notes when that one may become stale, so that offers until then
// need not read the peer's transfers again.
func (in *incoming) evictStale(q *Quota, evicted func(Record) (enough bool)) error {
	open, err := in.rc.Journal.UnfinishedIncoming(in.peer)
	if err != nil {
		return &Error{Code: CodeIO, Reason: err.Error()}
	}
	now := time.Now()
	for _, old := range open {
		if now.Sub(old.Updated) < evictableAfter {
			q.noneStaleUntil(in.peer, old.Updated.Add(evictableAfter))
			return nil // the rest were touched more recently still
		}
		if in.rc.receiving(old.Peer+"/"+old.ID) != nil {
			continue
		}
		in.log.Info("forgot an unfinished transfer untouched for long, to make room for a new one", "file", old.Name, "updated", old.Updated, "peer", shortPeer(in.peer))
		in.rc.forget(old)
		if evicted(old) {
			return nil
		}
	}
	return nil
}

// checkSpace refuses to reserve need more bytes when that would leave
// less free space than DiskLimits.MinFree.
func (in *incoming) checkSpace(q *Quota, need int64) error {
	if need <= 0 || !q.spaceChecked() {
		return nil
	}
	free, err := in.rc.freeSpace()
	if err != nil {
		return &Error{Code: CodeIO, Reason: fmt.Sprintf("check free space: %v", err)}
	}
	_, pending := q.pendingOf(in.peer)
	free -= pending // admitted, perhaps not reserved yet
	if minFree := q.DiskLimits().MinFree; need > free-minFree {
		return &Error{Code: CodeNoSpace, Reason: fmt.Sprintf("not enough disk space for %s (%s): %s free, of which %s is kept free",
			in.name, bytesize.Format(need), bytesize.Format(free), bytesize.Format(minFree))}
	}
	return nil
}

// freeSpace is what may still be allocated in the downloads folder.
func (rc *Receiver) freeSpace() (int64, error) {
	d, err := rc.Downloads.Open(".")
	if err != nil {
		return 0, err
	}
	defer d.Close()
	return freeSpace(d)
}

// bufferSize is the most a chunk of the offered file takes in memory.
func (in *incoming) bufferSize() int64 { return int64(min(uint64(in.offer.ChunkSize), in.offer.Size)) }

// takeMemory counts the transfer's receive buffer against the memory
// budget; run gives it back when the transfer ends.
func (in *incoming) takeMemory(q *Quota) error {
	n := in.bufferSize()
	if !q.takeMemory(in.peer, n) {
		return &Error{Code: CodeBusy, Reason: "too many files arriving at once; try again soon"}
	}
	in.memory = n
	return nil
}

// createStaging creates rec's staging file and reserves the file's whole
// size on disk, so a lack of space shows now, as a clear refusal, rather
// than halfway through. On error nothing is left: the file is gone with
// whatever a failed reservation allocated.
func (in *incoming) createStaging(rec Record) (*os.File, error) {
	if err := in.rc.Downloads.MkdirAll(StagingDir, 0o700); err != nil {
		return nil, &Error{Code: CodeIO, Reason: fmt.Sprintf("create staging folder: %v", err)}
	}
	in.rc.Downloads.Remove(rec.Staging) // left by a crash before its record was written
	f, err := in.rc.Downloads.OpenFile(rec.Staging, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, &Error{Code: CodeIO, Reason: fmt.Sprintf("create staging file: %v", err)}
	}
	if err := reserve(f, rec.Size); err != nil {
		giveBack(in.rc.Downloads, f, rec.Staging)
		return nil, in.reserveError(err)
	}
	return f, nil
}

func (in *incoming) reserveError(err error) *Error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return &Error{Code: CodeNoSpace, Reason: fmt.Sprintf("not enough disk space for %s (%s)", in.name, bytesize.Format(int64(in.offer.Size)))}
	}
	return &Error{Code: CodeIO, Reason: fmt.Sprintf("reserve space: %v", err)}
}

// giveBack closes and removes a staging file whose reservation failed
// or was never recorded. ext4 keeps what a failed fallocate allocated
// (tmpfs does not): truncating frees it even while another handle keeps
// the file open.
func giveBack(root *os.Root, f *os.File, staging string) {
	f.Truncate(0)
	f.Close()
	root.Remove(staging)
}

// resume reopens the staging file of an interrupted transfer and loads
// which chunks it holds. Its space was reserved when it started; a file
// left partly allocated (by an older build, or a filesystem without
// fallocate) has the rest reserved under the rules of a new one.
func (in *incoming) resume(name string) error {
	f, err := in.rc.Downloads.OpenFile(in.rec.Staging, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		in.log.Warn("staging file gone; starting over", "file", in.rec.Name)
		in.rc.forget(in.rec)
		return in.start(name)
	}
	if err != nil {
		return &Error{Code: CodeIO, Reason: fmt.Sprintf("open staging file: %v", err)}
	}
	in.file = f
	q := in.rc.quota()
	if err := in.takeMemory(q); err != nil {
		return err
	}
	if err := in.reserveRest(q); err != nil {
		return err
	}
	return in.loadChunks()
}

// reserveRest reserves what the staging file lacks of the whole size.
// Nothing is taken when the free space does not allow it; when fallocate
// fails, what it took cannot be told from the data, so the transfer is
// forgotten with its file.
func (in *incoming) reserveRest(q *Quota) error {
	have, err := allocated(in.file)
	if err != nil {
		return &Error{Code: CodeIO, Reason: fmt.Sprintf("stat staging file: %v", err)}
	}
	need := in.rec.Size - have
	if need <= 0 {
		return nil
	}
	q.admit.Lock()
	defer q.admit.Unlock()
	if err := in.checkSpace(q, need); err != nil {
		return err
	}
	if err := reserve(in.file, in.rec.Size); err != nil {
		in.file.Truncate(0)
		in.discard()
		return in.reserveError(err)
	}
	return nil
}

// loadChunks marks the chunks the journal holds as had; the have-bitmap
// is the one allocation an admitted transfer makes besides its receive
// buffer (at most MaxChunks/8, 1 MiB).
func (in *incoming) loadChunks() error {
	in.have, in.done = NewBitmap(in.offer.Chunks()), 0
	err := in.rc.Journal.IncomingChunks(in.peer, in.rec.ID, func(i uint32, h []byte) error {
		if int(i) < in.have.Len() && len(h) == HashLen && !in.have.Has(int(i)) {
			in.have.Set(int(i))
			in.done += int64(in.offer.ChunkLen(int(i)))
		}
		return nil
	})
	if err != nil {
		return &Error{Code: CodeIO, Reason: err.Error()}
	}
	return nil
}

// forget drops an incoming transfer's staging file and record.
func (rc *Receiver) forget(rec Record) {
	rc.Downloads.Remove(rec.Staging)
	if err := rc.Journal.DeleteIncoming(rec.Peer, rec.ID); err != nil {
		rc.logger().Error("forget transfer", "file", rec.Name, "err", err)
	}
}
