package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/punchdrop/punchdrop/agent/scheduler"
	"github.com/punchdrop/punchdrop/store"
)

// The outbox's own folder, and what is done with a file once every peer
// it was meant for has it.
const (
	sentFolder      = "Sent"
	AfterSendMove   = "move"   // into Outbox/Sent/
	AfterSendKeep   = "keep"   // left where it is, and not sent again
	AfterSendDelete = "delete" // removed
)

// DefaultQuietPeriod is how long a dropped file must stay unchanged (size
// and modification time) before it is sent: a file still being copied or
// downloaded keeps changing.
const DefaultQuietPeriod = 2 * time.Second

// Dropped items are checked for quiet when their quiet period ends, and
// at least every maxCheckGap (a folder's inner changes raise no events),
// at most every minCheckGap (so a burst of drops is queued together).
const (
	minCheckGap = 20 * time.Millisecond
	maxCheckGap = 250 * time.Millisecond
)

// outboxRetry is how long the agent waits before watching the outbox
// again after the watch failed (a folder on a disk that went away).
const outboxRetry = 5 * time.Second

// outbox watches the outbox folder and queues what is dropped into it:
// a file or folder in the outbox itself goes to every configured peer,
// one in Outbox/<peer name>/ to that peer only. It moves a file to
// Outbox/Sent/ (or keeps or deletes it) once every receiver has
// confirmed it, and never before.
type outbox struct {
	dir      string
	store    *store.Store
	sched    *scheduler.Scheduler
	log      *slog.Logger
	settings func() (quiet time.Duration, afterSend string)
	rescanCh chan struct{}
	settleCh chan struct{}

	settleMu sync.Mutex
	toSettle map[string]bool // entries with a transfer just done

	mu sync.Mutex // guards following; held while queueing and settling
	// folders maps each peer folder's name to its peer's node ID.
	folders map[string]string
	// candidates are dropped items waiting for quiet, by path.
	candidates map[string]*candidate
}

// candidate is a dropped file or folder that may still be changing.
type candidate struct {
	stamp string
	since time.Time // when stamp was last seen to change
}

// newOutbox prepares a watcher of the configured outbox folder.
func (a *Agent) newOutbox() *outbox {
	return &outbox{
		dir: cmpOr(a.cfg.Outbox, a.paths.Outbox), store: a.store, sched: a.sched, log: a.log,
		settings:   a.outboxSettings,
		rescanCh:   make(chan struct{}, 1),
		settleCh:   make(chan struct{}, 1),
		toSettle:   map[string]bool{},
		folders:    map[string]string{},
		candidates: map[string]*candidate{},
	}
}

func (a *Agent) outboxSettings() (time.Duration, string) {
	a.cfgMu.Lock()
	defer a.cfgMu.Unlock()
	return a.cfg.QuietPeriod.Duration, cmpOr(a.cfg.AfterSend, AfterSendMove)
}

func (a *Agent) currentOutbox() *outbox {
	a.cfgMu.Lock()
	defer a.cfgMu.Unlock()
	return a.outbox
}

// runOutbox watches the outbox until ctx ends, starting over when the
// watch fails or a config reload moves the outbox.
func (a *Agent) runOutbox(ctx context.Context) {
	for ctx.Err() == nil {
		runCtx, cancel := context.WithCancel(ctx)
		a.cfgMu.Lock()
		o := a.outbox
		a.reopenOutbox = cancel
		a.cfgMu.Unlock()
		err := o.run(runCtx)
		moved := runCtx.Err() != nil && ctx.Err() == nil
		cancel()
		if err != nil {
			a.log.Error("outbox", "err", err, "retry_in", outboxRetry)
			select {
			case <-ctx.Done():
			case <-time.After(outboxRetry):
			}
		}
		if moved {
			a.cfgMu.Lock()
			a.outbox = a.newOutbox()
			a.cfgMu.Unlock()
		}
	}
}

// run watches the outbox until ctx ends. Transfers that finished while
// the agent was down are settled first, then everything in the outbox is
// looked at, as if just dropped.
func (o *outbox) run(ctx context.Context) error {
	if err := os.MkdirAll(filepath.Join(o.dir, sentFolder), 0o755); err != nil {
		return fmt.Errorf("outbox folder: %w", err)
	}
	w, err := fsnotify.NewBufferedWatcher(4096)
	if err != nil {
		return fmt.Errorf("watch outbox: %w", err)
	}
	defer w.Close()
	if err := w.Add(o.dir); err != nil {
		return fmt.Errorf("watch outbox %s: %w", o.dir, err)
	}
	o.settleAll()
	o.rescan(w)
	o.log.Info("watching outbox", "dir", o.dir)
	check := time.NewTimer(time.Hour)
	defer check.Stop()
	for {
		check.Reset(o.untilCheck(time.Now()))
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("outbox watcher stopped")
			}
			o.notice(w, ev)
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("outbox watcher stopped")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				o.log.Warn("outbox: too many changes at once; looking at everything again")
				o.rescan(w)
			} else {
				o.log.Warn("outbox watcher", "err", err)
			}
		case <-o.rescanCh:
			o.rescan(w)
		case <-o.settleCh:
			o.settlePending()
		case now := <-check.C:
			o.checkQuiet(now)
		}
	}
}

// requestRescan asks run to look at the whole outbox again (a peer was
// added, renamed or removed).
func (o *outbox) requestRescan() {
	select {
	case o.rescanCh <- struct{}{}:
	default:
	}
}

// addPeer makes a new peer's folder before it returns, so that the folder
// is there once "connect" is done and is never taken for a drop for every
// peer; run then watches it and looks again at files that waited for a
// peer.
func (o *outbox) addPeer() {
	o.mu.Lock()
	err := o.makePeerFolders()
	o.mu.Unlock()
	if err != nil {
		o.log.Error("outbox: peer folders", "err", err)
	}
	o.requestRescan()
}

// rescan makes a folder for every peer, watches it, and takes everything
// in the outbox as a candidate; queued entries whose file is gone are
// cancelled.
func (o *outbox) rescan(w *fsnotify.Watcher) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.makePeerFolders(); err != nil {
		o.log.Error("outbox: peer folders", "err", err)
	}
	for name := range o.folders {
		if err := w.Add(filepath.Join(o.dir, name)); err != nil {
			o.log.Warn("watch peer folder", "folder", name, "err", err)
		}
	}
	top, err := os.ReadDir(o.dir)
	if err != nil {
		o.log.Error("read outbox", "err", err)
		return
	}
	for _, d := range top {
		if d.Name() == sentFolder {
			continue
		}
		if _, ok := o.folders[d.Name()]; ok && d.IsDir() {
			inner, err := os.ReadDir(filepath.Join(o.dir, d.Name()))
			if err != nil {
				o.log.Warn("read peer folder", "folder", d.Name(), "err", err)
			}
			for _, e := range inner {
				o.addCandidate(filepath.Join(o.dir, d.Name(), e.Name()))
			}
			continue
		}
		o.addCandidate(filepath.Join(o.dir, d.Name()))
	}
	o.cancelGone()
}

// makePeerFolders creates Outbox/<name>/ for every configured peer and
// refreshes the folder map.
func (o *outbox) makePeerFolders() error {
	peers, err := o.store.Peers()
	if err != nil {
		return err
	}
	clear(o.folders)
	for _, p := range peers {
		name := peerFolder(p)
		if err := os.MkdirAll(filepath.Join(o.dir, name), 0o755); err != nil {
			return err
		}
		o.folders[name] = p.ID.String()
	}
	return nil
}

// peerFolder is the name of a peer's outbox folder: its name, made safe
// for a file system, or its short ID.
func peerFolder(p store.Peer) string {
	name := strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == 0 {
			return '_'
		}
		return r
	}, p.Name)
	switch {
	case name == "" || strings.HasPrefix(name, ".") || ignored(name):
		return p.ID.Short()
	case strings.EqualFold(name, sentFolder):
		return name + " (peer)"
	}
	return name
}

// notice turns a change in the outbox into a candidate: the top-level
// item it belongs to (in the outbox, or in a peer folder).
func (o *outbox) notice(w *fsnotify.Watcher, ev fsnotify.Event) {
	rel, err := filepath.Rel(o.dir, ev.Name)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return
	}
	top, rest, nested := strings.Cut(filepath.ToSlash(rel), "/")
	if top == sentFolder {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	item := top
	if _, ok := o.folders[top]; ok {
		if !nested { // the peer folder itself was made again: watch it
			o.requestRescan()
			return
		}
		first, _, _ := strings.Cut(rest, "/")
		item = top + "/" + first
	}
	o.addCandidate(filepath.Join(o.dir, filepath.FromSlash(item)))
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		o.cancelGone(item)
	}
}

// addCandidate starts (or restarts) the wait for quiet on path, unless
// its name marks it as temporary.
func (o *outbox) addCandidate(path string) {
	if ignored(filepath.Base(path)) {
		return
	}
	if c, ok := o.candidates[path]; ok {
		c.since = time.Now()
		return
	}
	st, err := stampOf(path)
	if err != nil { // gone already
		return
	}
	o.candidates[path] = &candidate{stamp: st, since: time.Now()}
}

// untilCheck is how long to wait before checking the candidates.
func (o *outbox) untilCheck(now time.Time) time.Duration {
	quiet, _ := o.settings()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.candidates) == 0 {
		return time.Hour
	}
	wait := maxCheckGap
	for _, c := range o.candidates {
		wait = min(wait, c.since.Add(quiet).Sub(now))
	}
	return max(wait, minCheckGap)
}

// checkQuiet queues the candidates that stayed unchanged for the quiet
// period, all in one transaction.
func (o *outbox) checkQuiet(now time.Time) {
	quiet, _ := o.settings()
	o.mu.Lock()
	defer o.mu.Unlock()
	ready := map[string]string{} // path: stamp
	for path, c := range o.candidates {
		st, err := stampOf(path)
		switch {
		case err != nil: // gone, or not a file or folder
			delete(o.candidates, path)
		case st != c.stamp:
			c.stamp, c.since = st, now
		case now.Sub(c.since) >= quiet:
			delete(o.candidates, path)
			ready[path] = st
		}
	}
	if len(ready) > 0 {
		o.queue(ready)
	}
}

// stampOf identifies the content of a file or folder by sizes and
// modification times: it changes while the item is being written.
func stampOf(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if fi.Mode().IsRegular() {
		return fmt.Sprintf("f%d/%d", fi.Size(), fi.ModTime().UnixNano()), nil
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a file or folder", path)
	}
	var n, size, latest int64
	err = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n++
		if d.Type().IsRegular() {
			size += info.Size()
		}
		latest = max(latest, info.ModTime().UnixNano())
		return nil
	})
	return fmt.Sprintf("d%d/%d/%d", n, size, latest), err
}

// queue records the ready items (path: stamp), one outbox entry each
// with a transfer per file and peer, and starts sending.
func (o *outbox) queue(ready map[string]string) {
	peers, err := o.store.Peers()
	if err != nil {
		o.log.Error("outbox: read peers", "err", err)
		return
	}
	now := time.Now().UTC()
	var drops []store.OutboxDrop
	for path, st := range ready {
		rel, _ := filepath.Rel(o.dir, path)
		key := filepath.ToSlash(rel)
		var to []string
		if folder, _, nested := strings.Cut(key, "/"); nested {
			if peer, ok := o.folders[folder]; ok { // else its peer was just removed
				to = []string{peer}
			}
		} else if _, ok := o.folders[key]; ok {
			continue // a folder seen before its peer was added: the peer's now
		} else {
			for _, p := range peers {
				to = append(to, p.ID.String())
			}
		}
		if len(to) == 0 {
			o.log.Info("outbox: no peers yet; the file waits", "file", key)
			continue
		}
		files, err := expand(path, temporary)
		if err != nil {
			o.log.Warn("outbox: cannot send", "file", key, "err", err)
			continue
		}
		if len(files) == 0 { // an empty folder: nothing to send, left alone
			continue
		}
		drop := store.OutboxDrop{Entry: store.OutboxEntry{
			Key: key, Path: path, Stamp: st, Peers: to, State: store.OutboxQueued, Added: now, Updated: now,
		}}
		for _, peer := range to {
			for _, f := range files {
				drop.Transfers = append(drop.Transfers, f.outgoing(peer, now))
			}
		}
		drops = append(drops, drop)
	}
	queued, err := o.store.QueueOutbox(drops...)
	if err != nil {
		o.log.Error("outbox: queue", "err", err)
		return
	}
	for _, d := range queued {
		o.log.Info("outbox: queued", "file", d.Entry.Key, "files", len(d.Transfers)/len(d.Entry.Peers), "peers", len(d.Entry.Peers))
		o.sched.Queued(d.Transfers)
	}
}

// ignored reports whether an item dropped into the outbox is left alone:
// hidden (a dotfile) or temporary.
func ignored(name string) bool { return strings.HasPrefix(name, ".") || temporary(name) }

// temporary reports whether a file name marks a temporary or partial
// file, which is never sent, not even inside a folder: downloads in
// progress, office lock files, editor swap, lock and backup files.
func temporary(name string) bool {
	lower := strings.ToLower(name)
	for _, suffix := range []string{".part", ".partial", ".crdownload", ".download", ".tmp", ".temp", ".swp", ".swo", ".swx", "~"} {
		if strings.HasSuffix(lower, suffix) {
			return true
		}
	}
	return strings.HasPrefix(name, "~$") || strings.HasPrefix(name, ".#") ||
		strings.HasPrefix(name, "#") && strings.HasSuffix(name, "#") || name == "4913"
}

// renamePeer renames a peer's folder along with its queued entries.
func (o *outbox) renamePeer(oldPeer, newPeer store.Peer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	from, to := peerFolder(oldPeer), peerFolder(newPeer)
	oldPath, newPath := filepath.Join(o.dir, from), filepath.Join(o.dir, to)
	if from == to {
		return
	}
	if err := renameNoReplace(oldPath, newPath); err != nil {
		o.log.Warn("outbox: rename peer folder", "from", from, "to", to, "err", err)
		return
	}
	if err := o.store.MoveOutboxFolder(from, oldPath, to, newPath); err != nil {
		o.log.Error("outbox: rename peer folder", "from", from, "to", to, "err", err)
	}
	delete(o.folders, from)
	o.folders[to] = newPeer.ID.String()
	for path, c := range o.candidates {
		if rest, ok := strings.CutPrefix(path, oldPath+string(filepath.Separator)); ok {
			delete(o.candidates, path)
			o.candidates[filepath.Join(newPath, rest)] = c
		}
	}
	o.requestRescan()
}

// removePeer forgets a removed peer: files that every other peer has now
// count as delivered, and its folder is parked: deleted when empty, else
// moved to Outbox/Sent/ so that its files are neither lost nor sent to
// everyone as a folder of the outbox.
func (o *outbox) removePeer(p store.Peer) {
	changed, err := o.store.DropOutboxPeer(p.ID.String())
	if err != nil {
		o.log.Error("outbox: forget removed peer", "err", err)
	}
	for _, key := range changed {
		o.settle(key)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	name := peerFolder(p)
	path := filepath.Join(o.dir, name)
	delete(o.folders, name)
	if err := os.Remove(path); err == nil || errors.Is(err, fs.ErrNotExist) {
		return
	}
	dst, err := o.moveToSent(path, name+" (peer removed)")
	if err != nil {
		o.log.Error("outbox: park removed peer's folder", "folder", name, "err", err)
		return
	}
	o.log.Info("outbox: removed peer's folder parked", "folder", name, "to", dst)
}
