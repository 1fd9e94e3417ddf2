package store

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Outbox entry states.
const (
	// OutboxQueued: some peer it is meant for does not have it yet.
	OutboxQueued = "queued"
	// OutboxDelivered: every peer has it; the after-send action (move
	// to Sent, delete) is still to be done.
	OutboxDelivered = "delivered"
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

// QueueOutbox records an outbox entry together with its outgoing
// transfers, in one transaction, unless the entry is known already: an
// entry still queued is not queued twice (a changed stamp is noted, and
// the transfers send the file as it is then), and a kept entry is queued
// again only when its stamp changed (a new version). It reports whether
// it queued anything.
func (s *Store) QueueOutbox(e OutboxEntry, items []Outgoing) (bool, error) {
	queued := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		var old OutboxEntry
		if err := getJSON(b, []byte(e.Key), &old); err == nil {
			if old.State != OutboxKept || old.Stamp == e.Stamp {
				if old.Stamp == e.Stamp {
					return nil
				}
				old.Stamp, old.Updated = e.Stamp, e.Updated
				return putJSON(b, []byte(e.Key), old)
			}
		}
		out := tx.Bucket(bucketOutgoing)
		e.Transfers = e.Transfers[:0]
		for _, o := range items {
			o.Outbox = e.Key
			if err := putJSON(out, []byte(o.ID), o); err != nil {
				return err
			}
			e.Transfers = append(e.Transfers, o.ID)
		}
		queued = true
		return putJSON(b, []byte(e.Key), e)
	})
	if err != nil {
		return false, fmt.Errorf("queue %s: %w", e.Key, err)
	}
	return queued, nil
}

// OutboxEntries returns every outbox entry, ordered by key.
func (s *Store) OutboxEntries() ([]OutboxEntry, error) {
	return list[OutboxEntry](s.db, bucketOutbox, "outbox entry")
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
			if err := getJSON(out, []byte(id), &o); err != nil || o.State != StateDone {
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

// UpdateOutbox changes an outbox entry with fn.
func (s *Store) UpdateOutbox(key string, fn func(*OutboxEntry)) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		var e OutboxEntry
		if err := getJSON(b, []byte(key), &e); err != nil {
			return fmt.Errorf("update outbox entry %s: %w", key, err)
		}
		fn(&e)
		return putJSON(b, []byte(key), e)
	})
}

// DeleteOutbox forgets an outbox entry; its transfers stay in the
// history.
func (s *Store) DeleteOutbox(key string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).Delete([]byte(key))
	})
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
				if err := putJSON(out, []byte(id), o); err != nil {
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
