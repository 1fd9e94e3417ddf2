package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Outbox entry states.
const (
	// OutboxQueued: some peer it is meant for does not have it yet.
	OutboxQueued = "queued"
	// OutboxKept: delivered and left where it is (after-send "keep"); the
	// record stays so that the file is not sent again.
	OutboxKept = "kept"
)

// OutboxEntry is a file or folder dropped into the outbox, with the
// transfers that carry it to each peer (one per file and peer).
type OutboxEntry struct {
	// Key is the path relative to the outbox, '/'-separated:
	// "report.pdf", or "bob/photo.jpg" in bob's folder.
	Key  string `json:"key"`
	Path string `json:"path"` // absolute path
	// Stamp identifies the content that was queued (size and times), so
	// that seeing the same file again queues nothing.
	Stamp     string    `json:"stamp"`
	Peers     []string  `json:"peers"`
	Transfers []string  `json:"transfers"` // outgoing transfer IDs
	State     string    `json:"state"`
	Added     time.Time `json:"added"`
	Updated   time.Time `json:"updated"`
}

// OutboxDrop is an outbox entry with the transfers that carry it.
type OutboxDrop struct {
	Entry     OutboxEntry
	Transfers []Outgoing
}

// QueueOutbox records outbox entries together with their outgoing
// transfers, all in one transaction, and returns the ones it queued. An
// entry known already is not queued again: one still queued only notes a
// changed stamp (its transfers send the file as it is then), and a kept
// one is queued again only when its stamp changed: a new version.
func (s *Store) QueueOutbox(drops ...OutboxDrop) ([]OutboxDrop, error) {
	var queued []OutboxDrop
	err := s.db.Update(func(tx *bolt.Tx) error {
		queued = queued[:0]
		b := tx.Bucket(bucketOutbox)
		for _, d := range drops {
			e := d.Entry
			var old OutboxEntry
			if err := getJSON(b, []byte(e.Key), &old); err == nil && (old.State != OutboxKept || old.Stamp == e.Stamp) {
				if old.Stamp != e.Stamp {
					old.Stamp, old.Updated = e.Stamp, e.Updated
					if err := putJSON(b, []byte(e.Key), old); err != nil {
						return err
					}
				}
				continue
			}
			e.Transfers = nil
			for i := range d.Transfers {
				d.Transfers[i].Outbox = e.Key
				if err := putOutgoing(tx, d.Transfers[i]); err != nil {
					return fmt.Errorf("queue %s: %w", e.Key, err)
				}
				e.Transfers = append(e.Transfers, d.Transfers[i].ID)
			}
			if err := putJSON(b, []byte(e.Key), e); err != nil {
				return fmt.Errorf("queue %s: %w", e.Key, err)
			}
			d.Entry = e
			queued = append(queued, d)
		}
		return nil
	})
	return queued, err
}

// OutboxEntries returns every outbox entry, ordered by key.
func (s *Store) OutboxEntries() ([]OutboxEntry, error) {
	return list[OutboxEntry](s.db, bucketOutbox, "outbox entry")
}

// OutboxEntry returns one outbox entry.
func (s *Store) OutboxEntry(key string) (OutboxEntry, error) {
	return get[OutboxEntry](s.db, bucketOutbox, key, "outbox entry")
}

// OutboxProgress returns an entry and whether every one of its transfers
// is done.
func (s *Store) OutboxProgress(key string) (e OutboxEntry, delivered bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		if err := getJSON(tx.Bucket(bucketOutbox), []byte(key), &e); err != nil {
			return err
		}
		out := tx.Bucket(bucketOutgoing)
		delivered = true
		for _, id := range e.Transfers {
			var o Outgoing
			if err := getJSON(out, []byte(id), &o); err != nil || o.State != OutgoingDone {
				delivered = false
				break
			}
		}
		return nil
	})
	if err != nil {
		return e, false, fmt.Errorf("outbox entry %s: %w", key, err)
	}
	return e, delivered, nil
}

// SettleOutbox forgets the entries in forget (their files left the
// outbox; the transfers stay in the history) and marks those in kept as
// kept, in one transaction.
func (s *Store) SettleOutbox(forget, kept []string) error {
	if len(forget)+len(kept) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		for _, key := range forget {
			if err := b.Delete([]byte(key)); err != nil {
				return err
			}
		}
		now := time.Now().UTC()
		for _, key := range kept {
			var e OutboxEntry
			if err := getJSON(b, []byte(key), &e); err != nil {
				return fmt.Errorf("keep outbox entry %s: %w", key, err)
			}
			e.State, e.Updated = OutboxKept, now
			if err := putJSON(b, []byte(key), e); err != nil {
				return err
			}
		}
		return nil
	})
}

// DropOutboxPeer takes a removed peer out of every outbox entry, with its
// transfers, and returns the keys of the entries that changed: they may
// now be delivered to every peer they are still meant for. An entry meant
// for that peer alone is forgotten: its file was not sent, and stays.
func (s *Store) DropOutboxPeer(peer string) ([]string, error) {
	var changed []string
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, out := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutgoing)
		var entries []OutboxEntry
		err := b.ForEach(func(_, v []byte) error {
			var e OutboxEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if slices.Contains(e.Peers, peer) {
				entries = append(entries, e)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range entries {
			e.Peers = slices.DeleteFunc(e.Peers, func(p string) bool { return p == peer })
			if len(e.Peers) == 0 {
				if err := b.Delete([]byte(e.Key)); err != nil {
					return err
				}
				continue
			}
			e.Transfers = slices.DeleteFunc(e.Transfers, func(id string) bool {
				var o Outgoing
				return getJSON(out, []byte(id), &o) == nil && o.Peer == peer
			})
			if err := putJSON(b, []byte(e.Key), e); err != nil {
				return err
			}
			changed = append(changed, e.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("drop peer %s from the outbox: %w", peer, err)
	}
	return changed, nil
}

// MoveOutboxFolder rewrites the entries under the outbox folder oldKey
// (and their transfers' source paths) to newKey, whose absolute path is
// newPath, after the folder was renamed on disk.
func (s *Store) MoveOutboxFolder(oldKey, oldPath, newKey, newPath string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b, out := tx.Bucket(bucketOutbox), tx.Bucket(bucketOutgoing)
		var moved []OutboxEntry
		c := b.Cursor()
		prefix := []byte(oldKey + "/")
		for k, v := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, v = c.Next() {
			var e OutboxEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			moved = append(moved, e)
		}
		for _, e := range moved {
			if err := b.Delete([]byte(e.Key)); err != nil {
				return err
			}
			e.Key = newKey + strings.TrimPrefix(e.Key, oldKey)
			e.Path = newPath + strings.TrimPrefix(e.Path, oldPath)
			for _, id := range e.Transfers {
				var o Outgoing
				if err := getJSON(out, []byte(id), &o); err != nil {
					continue
				}
				o.Outbox, o.Path = e.Key, newPath+strings.TrimPrefix(o.Path, oldPath)
				if err := putOutgoing(tx, o); err != nil {
					return err
				}
			}
			if err := putJSON(b, []byte(e.Key), e); err != nil {
				return err
			}
		}
		return nil
	})
}
