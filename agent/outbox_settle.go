package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/punchdrop/punchdrop/store"
	"github.com/punchdrop/punchdrop/transfer"
)

// What becomes of an outbox entry once every peer it was meant for has
// confirmed it (the after-send action), or once it is taken out of the
// outbox before that.

// cancelGone fails the transfers of queued entries whose file was taken
// out of the outbox before every peer had it: the entries with these
// keys, or every entry when none is given.
func (o *outbox) cancelGone(keys ...string) {
	var entries []store.OutboxEntry
	if len(keys) == 0 {
		var err error
		if entries, err = o.store.OutboxEntries(); err != nil {
			o.log.Error("outbox: read entries", "err", err)
			return
		}
	}
	for _, key := range keys {
		if e, err := o.store.OutboxEntry(key); err == nil {
			entries = append(entries, e)
		}
	}
	var gone []string
	for _, e := range entries {
		if _, err := os.Stat(e.Path); !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if e.State == store.OutboxQueued {
			o.log.Info("outbox: taken out before it was sent; cancelled", "file", e.Key)
			o.sched.Cancel(e.Transfers, "taken out of the outbox")
		}
		gone = append(gone, e.Key)
	}
	if err := o.store.SettleOutbox(gone, nil); err != nil {
		o.log.Error("outbox: forget entries", "err", err)
	}
}

// settleAll settles every entry: after a crash some may have been
// delivered without their after-send action done.
func (o *outbox) settleAll() {
	entries, err := o.store.OutboxEntries()
	if err != nil {
		o.log.Error("outbox: read entries", "err", err)
		return
	}
	o.settleMu.Lock()
	for _, e := range entries {
		o.toSettle[e.Key] = true
	}
	o.settleMu.Unlock()
	o.settlePending()
}

// settle notes that a transfer of an outbox entry is done; run then
// applies the after-send action if it was the entry's last. Many
// entries settle in one go, sharing a commit.
func (o *outbox) settle(key string) {
	o.settleMu.Lock()
	o.toSettle[key] = true
	o.settleMu.Unlock()
	select {
	case o.settleCh <- struct{}{}:
	default:
	}
}

// settlePending applies the after-send action to the noted entries each
// of whose transfers is done, that is, whose every receiver confirmed
// its file.
func (o *outbox) settlePending() {
	o.settleMu.Lock()
	keys := o.toSettle
	o.toSettle = map[string]bool{}
	o.settleMu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	_, after := o.settings()
	var forget, kept []string
	for key := range keys {
		e, delivered, err := o.store.OutboxProgress(key)
		if err != nil || !delivered || e.State == store.OutboxKept {
			continue
		}
		st, err := stampOf(e.Path)
		switch {
		case err != nil: // moved or deleted already
			forget = append(forget, key)
		case st != e.Stamp || after == AfterSendKeep:
			// Kept, or replaced by a new version since it was queued: the
			// next look at the outbox queues that version.
			kept = append(kept, key)
			if st != e.Stamp {
				o.addCandidate(e.Path)
			}
		case after == AfterSendDelete:
			if err = os.RemoveAll(e.Path); err != nil {
				o.log.Error("outbox: delete after sending", "file", key, "err", err)
				continue
			}
			forget = append(forget, key)
		default:
			dst, err := o.moveToSent(e.Path, key)
			if err != nil {
				o.log.Error("outbox: move after sending", "file", key, "err", err)
				continue
			}
			o.log.Info("outbox: sent to every peer; moved", "file", key, "to", dst)
			forget = append(forget, key)
		}
	}
	if err := o.store.SettleOutbox(forget, kept); err != nil {
		o.log.Error("outbox: record after sending", "err", err)
	}
}

// moveToSent moves path to Outbox/Sent/<key>, never replacing anything
// there: a taken name becomes "name (1).ext".
func (o *outbox) moveToSent(path, key string) (string, error) {
	dst := filepath.Join(o.dir, sentFolder, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	base := filepath.Base(dst)
	for n := range 10000 {
		try := filepath.Join(filepath.Dir(dst), transfer.NumberedName(base, n))
		err := renameNoReplace(path, try)
		if !errors.Is(err, fs.ErrExist) {
			return try, err
		}
	}
	return "", fmt.Errorf("move %s to %s: every name is taken", key, sentFolder)
}
