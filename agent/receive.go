package agent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/punchdrop/punchdrop/transfer"
)

// receivesPerPeer bounds the streams one peer may push files on at once:
// a sender sends 64 files at once (the scheduler's sendsPerPeer), 3 of
// them large, and may stripe each of those over up to transfer.MaxLanes
// (16) lanes: 64 + 3×16 = 112 streams, and a few more while old ones end.
// Each file costs a buffer of up to a chunk, which the receivers' Quota
// also bounds in bytes, and its lanes share that buffer.
const receivesPerPeer = 128

// receiving takes the files peers send: a transfer.Receiver on the
// downloads folder (a new one when a reload moves it), and at most
// receivesPerPeer streams per peer at once.
type receiving struct {
	journal transfer.Journal
	// quota bounds what peers may take of the disk and memory; every
	// Receiver shares it, and a config reload changes its disk limits.
	quota *transfer.Quota
	log   *slog.Logger
	// folder names the subfolder of downloads for a peer's files.
	folder func(peer string) string
	// progress is told the progress of each file arriving.
	progress func(rec transfer.Record, done int64)
	// warnLog bounds the warnings about refused and interrupted files:
	// a peer that offers files in a loop must not fill the log.
	warnLog *rate.Limiter
	unsaid  atomic.Int64 // warnings warnLog held back since the last one

	mu      sync.Mutex // guards following
	recv    *transfer.Receiver
	streams map[string]int // being received, per peer
}

// downloadsFolder is the subfolder of downloads a peer's files go to:
// its name with downloads_per_peer, else none.
func (a *Agent) downloadsFolder(peer string) string {
	a.cfgMu.Lock()
	perPeer := a.cfg.PeerFolders
	a.cfgMu.Unlock()
	if p, ok := a.storedPeer(peer); ok && perPeer {
		return peerFolder(p)
	}
	return ""
}

// downloadsDir is the downloads folder.
func (a *Agent) downloadsDir() string {
	a.cfgMu.Lock()
	defer a.cfgMu.Unlock()
	return cmpOr(a.cfg.Downloads, a.paths.Downloads)
}

// setDownloads makes dir the downloads folder for files that start
// arriving from now on, and tidies its staging area.
func (r *receiving) setDownloads(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("downloads folder: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("downloads folder: %w", err)
	}
	recv := &transfer.Receiver{Journal: r.journal, Downloads: root, Log: r.log, Progress: r.progress, Folder: r.folder, Quota: r.quota}
	if err := recv.Clean(time.Now()); err != nil {
		r.log.Warn("tidy staging folder", "err", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// A previous folder stays open: files arriving into it finish there.
	r.recv = recv
	return nil
}

// close closes the downloads folder.
func (r *receiving) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recv != nil {
		r.recv.Downloads.Close()
	}
}

// receive takes the file peer offers on stream, unless the peer sends
// too many at once; it returns Receive's answer (a record without an ID
// when the offer was refused).
func (r *receiving) receive(ctx context.Context, peer string, stream transfer.Stream) (transfer.Record, error) {
	r.mu.Lock()
	recv := r.recv
	busy := r.streams[peer] >= receivesPerPeer
	if !busy {
		r.streams[peer]++
	}
	r.mu.Unlock()
	if busy {
		transfer.Refuse(stream, transfer.CodeBusy, "too many files at once; try again soon")
		return transfer.Record{}, nil
	}
	defer func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.streams[peer]--; r.streams[peer] == 0 {
			delete(r.streams, peer)
		}
	}()
	rec, err := recv.Receive(ctx, peer, stream)
	switch {
	case err == nil:
	case !r.warnLog.Allow():
		r.unsaid.Add(1)
	case rec.ID == "":
		r.log.Warn("incoming transfer refused", "peer", shortID(peer), "err", err, "unsaid", r.unsaid.Swap(0))
	default:
		r.log.Warn("receive interrupted", "file", rec.Name, "peer", shortID(peer), "err", err, "unsaid", r.unsaid.Swap(0))
	}
	return rec, err
}
