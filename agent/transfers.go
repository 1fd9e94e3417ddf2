package agent

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/session"
	"github.com/punchdrop/punchdrop/store"
	"github.com/punchdrop/punchdrop/transfer"
)

// Limits and timings of the transfer scheduler.
const (
	// sendsPerPeer is how many files go to one peer at once, each on its
	// own stream: small files spend most of their time in round trips
	// and flushes, so many overlap (and share database commits).
	sendsPerPeer = 16
	// bigSendsPerPeer bounds the files larger than a chunk among them:
	// a few keep the path full, and each costs a few chunk buffers.
	bigSendsPerPeer = 3
	// receivesPerPeer bounds the files one peer may push at once; each
	// costs a buffer of up to a chunk, which the receivers' Quota also
	// bounds in bytes.
	receivesPerPeer = 32
	// minSendRetry and maxSendRetry bound the back-off after a failed
	// attempt (peer offline, disk full on the other side, path lost).
	minSendRetry = 2 * time.Second
	maxSendRetry = 2 * time.Minute
	// sessionWait bounds one wait for a session before the attempt counts
	// as failed and backs off; the node keeps punching meanwhile.
	sessionWait = 90 * time.Second
	// progressInterval is the most often a transfer's progress is
	// published: smooth bars without flooding the event stream.
	progressInterval = 250 * time.Millisecond
	// finishedShown is how long done and failed transfers stay in status.
	finishedShown = 24 * time.Hour
)

// transfers is the agent's side of file transfers: the outgoing queue
// with a worker per peer, incoming streams, and live progress.
type transfers struct {
	store *store.Store
	node  *session.Node
	recv  *transfer.Receiver
	// quota bounds what peers may take of the disk and memory; every
	// Receiver shares it, and a config reload changes its disk limits.
	quota     *transfer.Quota
	downloads string
	log       *slog.Logger
	publish   func(control.TransferInfo)
	peerName  func(id string) string
	// peerFolder names the subfolder of downloads for a peer's files.
	peerFolder func(peer string) string
	// delivered is told the outbox entry of each file sent.
	delivered func(outboxKey string)

	wg sync.WaitGroup
	mu sync.Mutex // guards following
	// live holds transfers moving now. A peer picks the IDs of what it
	// sends, so an ID alone could name one of ours too: the key has the
	// direction and the peer as well.
	live map[liveKey]*liveTransfer
	// workers holds the wake-up channel of each peer's send worker.
	workers   map[string]chan struct{}
	retryAt   map[string]retry // when a failed transfer may try again, by ID
	incoming  map[string]int   // streams being received, per peer
	chunkSize int              // for new transfers; a config reload changes it
	ctx       context.Context
	// sendCtx is what sends run under; pausing cancels it, and resuming
	// makes a new one.
	sendCtx     context.Context
	cancelSends context.CancelFunc
	paused      bool
}

// retry is when a failed transfer to peer may try again.
type retry struct {
	peer string
	at   time.Time
}

// liveKey names one moving transfer.
type liveKey struct{ direction, peer, id string }

func keyOf(info control.TransferInfo) liveKey { return liveKey{info.Direction, info.Peer, info.ID} }

func outKey(o store.Outgoing) liveKey { return liveKey{control.DirectionOut, o.Peer, o.ID} }

func inKey(in store.Incoming) liveKey { return liveKey{control.DirectionIn, in.Peer, in.ID} }

// liveTransfer is the progress of one moving transfer.
type liveTransfer struct {
	info      control.TransferInfo
	seen      bool // update was called before
	lastDone  int64
	lastTime  time.Time
	published time.Time
}

// update records done bytes, smoothing the rate, and says whether it is
// time to publish.
func (l *liveTransfer) update(done int64, now time.Time) bool {
	if !l.seen {
		// The first report is what the receiver held already (a resume):
		// not bytes moved now.
		l.seen, l.lastDone, l.lastTime = true, done, now
	}
	if dt := now.Sub(l.lastTime); dt >= progressInterval {
		rate := float64(done-l.lastDone) / dt.Seconds()
		if l.info.RateBps == 0 {
			l.info.RateBps = rate
		} else {
			l.info.RateBps = 0.7*l.info.RateBps + 0.3*rate
		}
		l.lastDone, l.lastTime = done, now
	}
	l.info.Done = done
	l.info.ETASec = 0
	if l.info.RateBps > 0 {
		l.info.ETASec = float64(l.info.Size-done) / l.info.RateBps
	}
	if now.Sub(l.published) < progressInterval && done != l.info.Size {
		return false
	}
	l.published = now
	return true
}

// newTransfers prepares the downloads folder and the scheduler; the
// node is set once it exists.
func (a *Agent) newTransfers() (*transfers, error) {
	t := &transfers{
		store:     a.store,
		quota:     transfer.NewQuota(a.cfg.DiskLimits()),
		chunkSize: a.cfg.ChunkSize,
		log:       a.log,
		publish: func(info control.TransferInfo) {
			a.events.publish(control.Event{Kind: control.EventTransfer, Transfer: &info})
		},
		peerName:   a.peerName,
		peerFolder: a.downloadsFolder,
		live:       map[liveKey]*liveTransfer{},
		workers:    map[string]chan struct{}{},
		retryAt:    map[string]retry{},
		incoming:   map[string]int{},
	}
	if err := t.setDownloads(cmpOr(a.cfg.Downloads, a.paths.Downloads)); err != nil {
		return nil, err
	}
	return t, nil
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

// setDownloads makes dir the downloads folder for files that start
// arriving from now on, and tidies its staging area.
func (t *transfers) setDownloads(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("downloads folder: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("downloads folder: %w", err)
	}
	recv := &transfer.Receiver{Store: t.store, Downloads: root, Log: t.log, Progress: t.receiveProgress, Folder: t.peerFolder, Quota: t.quota}
	if err := recv.Clean(time.Now()); err != nil {
		t.log.Warn("tidy staging folder", "err", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	// A previous folder stays open: files arriving into it finish there.
	t.recv, t.downloads = recv, dir
	return nil
}

// setDiskLimits applies new disk limits to offers from now on.
func (t *transfers) setDiskLimits(l transfer.DiskLimits) { t.quota.SetDiskLimits(l) }

// run starts a worker for every peer with queued files and serves until
// ctx ends.
func (t *transfers) run(ctx context.Context) {
	paused, err := t.store.Paused()
	if err != nil {
		t.log.Error("read pause", "err", err)
	}
	t.mu.Lock()
	t.ctx = ctx
	t.sendCtx, t.cancelSends = context.WithCancel(ctx)
	if t.paused = paused; paused {
		t.cancelSends()
		t.log.Info("sending is paused; punchdrop resume starts it")
	}
	t.mu.Unlock()
	if all, err := t.store.OutgoingTransfers(); err == nil {
		for _, o := range all {
			if o.State == store.StateQueued || o.State == store.StateSending {
				t.kick(o.Peer)
			}
		}
	}
	<-ctx.Done()
	t.wg.Wait()
}

// queue adds files and folders for peer and starts sending them. A
// non-empty as renames a single file for the receiver.
func (t *transfers) queue(peer session.NodeID, paths []string, as string) ([]control.TransferInfo, error) {
	var items []store.Outgoing
	now := time.Now().UTC()
	for _, p := range paths {
		files, err := expand(p, nil)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			items = append(items, store.Outgoing{
				ID: newTransferID().String(), Peer: peer.String(), Path: f.path, Name: f.name,
				Size: f.size, State: store.StateQueued, Queued: now, Updated: now,
			})
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: nothing to send (empty folders only)", errBadRequest)
	}
	if as != "" {
		if len(items) != 1 {
			return nil, fmt.Errorf("%w: a new name is for a single file", errBadRequest)
		}
		items[0].Name = as // the receiver makes it safe, or refuses it
	}
	if err := t.store.AddOutgoing(items...); err != nil {
		return nil, err
	}
	t.log.Info("queued", "files", len(items), "peer", peer.Short())
	return t.queued(items), nil
}

// queued announces transfers just recorded and wakes their peers'
// workers.
func (t *transfers) queued(items []store.Outgoing) []control.TransferInfo {
	out := make([]control.TransferInfo, len(items))
	peers := map[string]bool{}
	for i, o := range items {
		out[i] = t.outgoingInfo(o)
		t.publish(out[i])
		peers[o.Peer] = true
	}
	for p := range peers {
		t.kick(p)
	}
	return out
}

// cancel fails the transfers with these IDs that are still queued.
func (t *transfers) cancel(ids []string, reason string) {
	for _, id := range ids {
		var o store.Outgoing
		err := t.store.UpdateOutgoing(id, func(r *store.Outgoing) {
			if r.State == store.StateQueued {
				r.State, r.Error, r.Updated = store.StateFailed, reason, time.Now().UTC()
			}
			o = *r
		})
		if err != nil {
			t.log.Error("cancel transfer", "id", id, "err", err)
			continue
		}
		t.publish(t.outgoingInfo(o))
	}
}

func newTransferID() transfer.ID {
	var id transfer.ID
	rand.Read(id[:])
	return id
}

type sourceFile struct {
	path string
	name string // relative, '/'-separated
	size int64
}

// expand lists the regular files at p: p itself, or every file under the
// folder p, named by their path from p's parent so the folder's layout
// arrives intact. Symbolic links are not followed, and files in the
// folder whose names skip (if not nil) accepts are left out.
func expand(p string, skip func(name string) bool) ([]sourceFile, error) {
	if !filepath.IsAbs(p) {
		return nil, fmt.Errorf("%w: %q is not an absolute path", errBadRequest, p)
	}
	p = filepath.Clean(p)
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errBadRequest, err)
	}
	if fi.Mode().IsRegular() {
		return []sourceFile{{path: p, name: filepath.Base(p), size: fi.Size()}}, nil
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a file or folder", errBadRequest, p)
	}
	parent := filepath.Dir(p)
	var files []sourceFile
	err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() || skip != nil && skip(d.Name()) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(parent, path)
		if err != nil {
			return err
		}
		files = append(files, sourceFile{path: path, name: filepath.ToSlash(rel), size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: read folder: %v", errBadRequest, err)
	}
	return files, nil
}

// kick wakes peer's send worker, starting it if needed.
func (t *transfers) kick(peer string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ctx == nil || t.ctx.Err() != nil {
		return
	}
	if wake, ok := t.workers[peer]; ok {
		offer(wake)
		return
	}
	wake := make(chan struct{}, 1)
	t.workers[peer] = wake
	ctx := t.ctx
	t.wg.Go(func() { t.worker(ctx, peer, wake) })
}

func offer(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// worker sends peer's queued files, a few at a time, oldest first, and
// retries failed ones after their back-off. It keeps the peer's queue in
// memory and re-reads it from the store only when woken (new files) or
// when an attempt failed, so a long queue costs one read per change, not
// one per file.
func (t *transfers) worker(ctx context.Context, peer string, wake chan struct{}) {
	var running sync.WaitGroup
	defer running.Wait()
	active := map[string]bool{} // running transfers; true for big ones
	done := make(chan sendResult, sendsPerPeer)
	var queue []store.Outgoing
	reload := true
	for {
		if reload {
			queue, reload = t.pending(peer, active), false
		}
		wait := time.Hour
		now := time.Now()
		waiting := queue[:0]
		sendCtx, paused := t.sending()
		for _, o := range queue {
			if paused {
				waiting = append(waiting, o)
				continue
			}
			if at := t.retryTime(o.ID); at.After(now) {
				wait = min(wait, at.Sub(now))
				waiting = append(waiting, o)
				continue
			}
			big := o.Size > int64(t.chunk())
			if len(active) == sendsPerPeer || big && countTrue(active) == bigSendsPerPeer {
				waiting = append(waiting, o)
				continue
			}
			active[o.ID] = big
			running.Go(func() {
				done <- sendResult{o.ID, t.send(sendCtx, o)}
			})
		}
		queue = waiting
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case r := <-done:
			delete(active, r.id)
			reload = r.queued // it failed or was cut off: back in the queue
		case <-wake:
			reload = true
		case <-timer.C:
		}
		timer.Stop()
	}
}

func countTrue(m map[string]bool) int {
	n := 0
	for _, v := range m {
		if v {
			n++
		}
	}
	return n
}

// pending lists peer's queued transfers that are not running, oldest
// first.
func (t *transfers) pending(peer string, active map[string]bool) []store.Outgoing {
	all, err := t.store.OutgoingTransfers()
	if err != nil {
		t.log.Error("read queue", "err", err)
		return nil
	}
	var out []store.Outgoing
	for _, o := range all {
		if _, running := active[o.ID]; o.Peer == peer && !running && (o.State == store.StateQueued || o.State == store.StateSending) {
			out = append(out, o)
		}
	}
	slices.SortStableFunc(out, func(a, b store.Outgoing) int { return a.Queued.Compare(b.Queued) })
	return out
}

// chunk is the chunk size for new transfers.
func (t *transfers) chunk() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.chunkSize
}

func (t *transfers) setChunkSize(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.chunkSize = n
}

// retryTime is when a failed transfer may try again; zero if it has not
// failed.
func (t *transfers) retryTime(id string) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.retryAt[id].at
}

// peerUp sends a peer's queued files at once, however long their
// back-off still had to run: the peer just connected.
func (t *transfers) peerUp(peer string) {
	t.mu.Lock()
	for id, r := range t.retryAt {
		if r.peer == peer {
			delete(t.retryAt, id)
		}
	}
	_, working := t.workers[peer]
	t.mu.Unlock()
	if working {
		t.kick(peer)
	}
}

// send makes one attempt at an outgoing transfer.
// It reports whether the transfer is still queued afterwards (failed for
// now, or cut off by a pause).
func (t *transfers) send(ctx context.Context, o store.Outgoing) (queued bool) {
	id, err := transfer.ParseID(o.ID)
	if err != nil {
		return t.finish(o, transfer.Result{}, &transfer.Error{Code: transfer.CodeRefused, Reason: err.Error()})
	}
	// The row may have changed since the worker read the queue: cancelled,
	// or its source moved with a renamed peer folder.
	cur, err := t.store.OutgoingTransfer(o.ID)
	if err != nil || cur.State != store.StateQueued {
		t.forget(o)
		return false
	}
	o = cur
	// "sending" lives in memory only: after a crash the file is queued
	// either way, so a commit per file would buy nothing.
	o.State = store.StateSending
	t.publish(t.outgoingInfo(o))
	res, err := t.attempt(ctx, o, id)
	if ctx.Err() != nil {
		// Paused or shutting down: it stays queued, and resumes.
		t.forget(o)
		o.State = store.StateQueued
		t.publish(t.outgoingInfo(o))
		return true
	}
	return t.finish(o, res, err)
}

// sendResult is how an attempt ended, for the worker.
type sendResult struct {
	id     string
	queued bool // it stays queued: failed for now, or cut off
}

// sending returns the context sends start under, and whether sending is
// paused.
func (t *transfers) sending() (context.Context, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sendCtx, t.paused
}

// setPaused stops sending (cutting off the files in flight, which keep
// what the receiver holds) or resumes it. A pause lasts across restarts.
func (t *transfers) setPaused(paused bool) error {
	t.mu.Lock()
	if t.ctx == nil || t.paused == paused {
		t.mu.Unlock()
		return nil
	}
	if err := t.store.SetPaused(paused); err != nil {
		t.mu.Unlock()
		return err
	}
	t.paused = paused
	if paused {
		t.cancelSends()
	} else {
		t.sendCtx, t.cancelSends = context.WithCancel(t.ctx)
	}
	peers := slices.Collect(maps.Keys(t.workers))
	t.mu.Unlock()
	t.log.Info("sending", "paused", paused)
	for _, p := range peers {
		t.kick(p)
	}
	return nil
}

func (t *transfers) attempt(ctx context.Context, o store.Outgoing, id transfer.ID) (transfer.Result, error) {
	peer, err := session.ParseNodeID(o.Peer)
	if err != nil {
		return transfer.Result{}, err
	}
	waitCtx, cancel := context.WithTimeout(ctx, sessionWait)
	sess, err := t.node.WaitSession(waitCtx, peer)
	cancel()
	if err != nil {
		return transfer.Result{}, err
	}
	stream, err := sess.OpenTransferStream(ctx)
	if err != nil {
		return transfer.Result{}, err
	}
	t.track(o)
	src := transfer.Source{ID: id, Path: o.Path, Name: o.Name, ChunkSize: t.chunk()}
	accepted := false
	return transfer.Send(ctx, stream, src, func(done, _ int64) {
		if !accepted { // the first report is what the receiver already held
			accepted = true
			t.log.Info("offer accepted", "file", o.Name, "peer", shortID(o.Peer), "have_bytes", done)
		}
		t.progress(outKey(o), done)
	})
}

// finish records the outcome of an attempt. Its log lines carry the
// bytes the attempt put on the wire (sent_bytes), which shows what a
// resume saved.
func (t *transfers) finish(o store.Outgoing, res transfer.Result, err error) (queued bool) {
	t.forget(o)
	state, msg, final := store.StateDone, "", res.Name
	switch {
	case err == nil:
		t.log.Info("file sent", "file", o.Name, "peer", shortID(o.Peer), "stored_as", final, "sent_bytes", res.Sent)
	case transfer.Retryable(err) && !errors.Is(err, session.ErrNoPeer):
		state, msg = store.StateQueued, err.Error()
		o.Tries++
		delay := min(minSendRetry<<min(o.Tries-1, 10), maxSendRetry)
		t.mu.Lock()
		t.retryAt[o.ID] = retry{peer: o.Peer, at: time.Now().Add(delay)}
		t.mu.Unlock()
		t.log.Warn("send failed; will retry", "file", o.Name, "peer", shortID(o.Peer), "in", delay, "sent_bytes", res.Sent, "err", err)
	default:
		state, msg = store.StateFailed, err.Error()
		t.log.Error("send failed", "file", o.Name, "peer", shortID(o.Peer), "sent_bytes", res.Sent, "err", err)
	}
	tries := o.Tries
	o.Final = final
	t.setState(&o, state, msg, func(r *store.Outgoing) {
		r.Tries, r.Final = tries, final
	})
	if state == store.StateDone && o.Outbox != "" && t.delivered != nil {
		t.delivered(o.Outbox)
	}
	return state == store.StateQueued
}

// setState changes an outgoing transfer's state in the store and tells
// the event stream.
func (t *transfers) setState(o *store.Outgoing, state, errMsg string, more ...func(*store.Outgoing)) {
	o.State, o.Error, o.Updated = state, errMsg, time.Now().UTC()
	err := t.store.UpdateOutgoing(o.ID, func(r *store.Outgoing) {
		r.State, r.Error, r.Updated = o.State, o.Error, o.Updated
		for _, fn := range more {
			fn(r)
		}
	})
	if err != nil {
		t.log.Error("record transfer state", "file", o.Name, "err", err)
	}
	t.publish(t.outgoingInfo(*o))
}

// dropPeer fails the files still queued for a peer that was removed;
// ones in flight fail as their session closes.
func (t *transfers) dropPeer(peer string) {
	all, err := t.store.OutgoingTransfers()
	if err != nil {
		t.log.Error("read queue", "err", err)
		return
	}
	for _, o := range all {
		if o.Peer == peer && o.State == store.StateQueued {
			t.setState(&o, store.StateFailed, "peer removed")
		}
	}
}

// track starts live progress for a transfer.
func (t *transfers) track(o store.Outgoing) {
	t.trackInfo(t.outgoingInfo(o))
}

func (t *transfers) trackInfo(info control.TransferInfo) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	t.live[keyOf(info)] = &liveTransfer{info: info, lastTime: now, published: now}
}

func (t *transfers) progress(key liveKey, done int64) {
	t.mu.Lock()
	l := t.live[key]
	var info control.TransferInfo
	publish := l != nil && l.update(done, time.Now())
	if publish {
		info = l.info
	}
	t.mu.Unlock()
	if publish {
		t.publish(info)
	}
}

// forget ends an outgoing transfer's progress and back-off.
func (t *transfers) forget(o store.Outgoing) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.live, outKey(o))
	delete(t.retryAt, o.ID)
}

// serveIncoming receives a file a peer offers on stream, until ctx (the
// session's) ends.
func (t *transfers) serveIncoming(ctx context.Context, sess *session.Session, stream *session.Stream) {
	peer := sess.Peer.String()
	t.mu.Lock()
	recv := t.recv
	busy := t.ctx == nil || t.incoming[peer] >= receivesPerPeer
	if !busy {
		t.incoming[peer]++
	}
	t.mu.Unlock()
	if busy {
		transfer.Refuse(stream, transfer.CodeBusy, "too many files at once; try again soon")
		return
	}
	defer func() {
		t.mu.Lock()
		t.incoming[peer]--
		t.mu.Unlock()
	}()
	rec, err := recv.Receive(ctx, peer, stream)
	if rec.ID == "" {
		if err != nil {
			t.log.Warn("incoming transfer refused", "peer", sess.Peer.Short(), "err", err)
		}
		return
	}
	info := t.incomingInfo(rec)
	t.mu.Lock()
	if l := t.live[inKey(rec)]; l != nil {
		info.Done = l.info.Done
	}
	delete(t.live, inKey(rec))
	t.mu.Unlock()
	if err != nil {
		info.State, info.Error = control.TransferFailed, err.Error()
		if transfer.Retryable(err) {
			info.State = control.TransferQueued // the sender will offer it again
		}
		t.log.Warn("receive interrupted", "file", rec.Name, "peer", sess.Peer.Short(), "err", err)
	}
	t.publish(info)
}

// receiveProgress is the Receiver's progress callback.
func (t *transfers) receiveProgress(rec store.Incoming, done int64) {
	t.mu.Lock()
	_, ok := t.live[inKey(rec)]
	t.mu.Unlock()
	if !ok {
		info := t.incomingInfo(rec)
		t.trackInfo(info)
		t.publish(info)
	}
	t.progress(inKey(rec), done)
}

// status lists transfers (everything queued or moving, and what ended in
// the last day) and the queue: each file still to send, per peer.
func (t *transfers) status() (control.Status, error) {
	out := []control.TransferInfo{}
	outgoing, err := t.store.OutgoingTransfers()
	if err != nil {
		return control.Status{}, err
	}
	incoming, err := t.store.IncomingTransfers()
	if err != nil {
		return control.Status{}, err
	}
	queue := []control.QueueItem{}
	for _, o := range outgoing {
		if o.State == store.StateQueued {
			queue = append(queue, control.QueueItem{
				ID: o.ID, File: o.Path, Name: o.Name, Peer: o.Peer, PeerName: t.peerName(o.Peer),
				State: o.State, Tries: o.Tries, Error: o.Error, Outbox: o.Outbox != "",
			})
		}
	}
	cutoff := time.Now().Add(-finishedShown)
	for _, o := range outgoing {
		if o.State != store.StateDone && o.State != store.StateFailed || o.Updated.After(cutoff) {
			out = append(out, t.outgoingInfo(o))
		}
	}
	for _, in := range incoming {
		if in.State != store.StateDone || in.Updated.After(cutoff) {
			out = append(out, t.incomingInfo(in))
		}
	}
	t.mu.Lock()
	paused := t.paused
	for i := range queue {
		if t.live[liveKey{control.DirectionOut, queue[i].Peer, queue[i].ID}] != nil {
			queue[i].State = control.TransferSending
		}
	}
	for i := range out {
		l := t.live[keyOf(out[i])]
		switch {
		case l != nil:
			out[i].State = l.info.State
			out[i].Done, out[i].RateBps, out[i].ETASec = l.info.Done, l.info.RateBps, l.info.ETASec
		case out[i].State == control.TransferReceiving:
			// Interrupted: it waits for the sender to offer it again.
			out[i].State = control.TransferQueued
		}
	}
	t.mu.Unlock()
	slices.SortStableFunc(out, func(a, b control.TransferInfo) int { return cmpState(a.State) - cmpState(b.State) })
	return control.Status{Transfers: out, Queue: queue, Paused: paused}, nil
}

// cmpState orders status rows: moving first, then waiting, then ended.
func cmpState(s string) int {
	return slices.Index([]string{control.TransferSending, control.TransferReceiving, control.TransferQueued, control.TransferFailed, control.TransferDone}, s)
}

func (t *transfers) outgoingInfo(o store.Outgoing) control.TransferInfo {
	info := control.TransferInfo{
		ID: o.ID, Peer: o.Peer, PeerName: t.peerName(o.Peer), Direction: control.DirectionOut,
		Name: o.Name, Path: o.Path, Size: o.Size, State: o.State, Error: o.Error,
	}
	if o.State == store.StateDone {
		info.Done = o.Size
	}
	return info
}

func (t *transfers) incomingInfo(in store.Incoming) control.TransferInfo {
	info := control.TransferInfo{
		ID: in.ID, Peer: in.Peer, PeerName: t.peerName(in.Peer), Direction: control.DirectionIn,
		Name: in.Name, Size: in.Size, State: in.State,
	}
	if in.State == store.StateDone {
		info.Name, info.Done = in.Final, in.Size
		t.mu.Lock()
		info.Path = filepath.Join(t.downloads, filepath.FromSlash(in.Final))
		t.mu.Unlock()
	}
	return info
}

func shortID(id string) string { return id[:min(len(id), 8)] }
