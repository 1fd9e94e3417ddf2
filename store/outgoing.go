package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OutgoingState is where an outgoing transfer stands. That an attempt
// at a queued one is running lives in memory only: after a crash it is
// queued either way.
type OutgoingState string

// Outgoing states.
const (
	OutgoingQueued OutgoingState = "queued" // waits its turn, or is being sent
	OutgoingDone   OutgoingState = "done"   // the receiver confirmed it
	OutgoingFailed OutgoingState = "failed" // given up: refused for good, cancelled, or its peer removed
)

// Outgoing is a file queued for, or sent to, one peer.
type Outgoing struct {
	ID      string        `json:"id"`   // transfer ID, hex
	Peer    string        `json:"peer"` // node ID
	Path    string        `json:"path"` // absolute path of the source file
	Name    string        `json:"name"` // relative name offered ("folder/a.txt")
	Size    int64         `json:"size"`
	State   OutgoingState `json:"state"`
	Error   string        `json:"error,omitempty"`  // why the last attempt failed
	Tries   int           `json:"tries"`            // attempts that failed
	Final   string        `json:"final,omitempty"`  // the name the receiver stored it under
	Outbox  string        `json:"outbox,omitempty"` // key of the outbox entry it came from
	Queued  time.Time     `json:"queued"`
	Updated time.Time     `json:"updated"`
}

// putOutgoing writes o, replacing the record of its ID if there is one,
// and moves its index entry.
func putOutgoing(tx *bolt.Tx, o Outgoing) error {
	b := tx.Bucket(bucketOutgoing)
	b.FillPercent = appendFill
	var old Outgoing
	if err := getJSON(b, []byte(o.ID), &old); err == nil {
		if err := outgoingEntry(old).delete(tx); err != nil {
			return err
		}
	}
	if err := outgoingEntry(o).put(tx); err != nil {
		return err
	}
	return putJSON(b, []byte(o.ID), o)
}

// AddOutgoing queues transfers in one transaction.
func (s *Store) AddOutgoing(items ...Outgoing) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, o := range items {
			if err := putOutgoing(tx, o); err != nil {
				return fmt.Errorf("queue %s: %w", o.Name, err)
			}
		}
		return nil
	})
}

// UpdateOutgoing changes a queued transfer with fn.
func (s *Store) UpdateOutgoing(id string, fn func(*Outgoing)) error {
	return s.batch(func(tx *bolt.Tx) error {
		var o Outgoing
		if err := getJSON(tx.Bucket(bucketOutgoing), []byte(id), &o); err != nil {
			return fmt.Errorf("update transfer %s: %w", id, err)
		}
		fn(&o)
		o.ID = id
		return putOutgoing(tx, o)
	})
}

// OutgoingTransfer returns one outgoing transfer.
func (s *Store) OutgoingTransfer(id string) (Outgoing, error) {
	return get[Outgoing](s.db, bucketOutgoing, id, "outgoing transfer")
}

// PendingOutgoing returns the transfers queued for peer, oldest first.
// It reads the peer's queue only, however long the history.
func (s *Store) PendingOutgoing(peer string) ([]Outgoing, error) {
	var out []Outgoing
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = queuedOutgoing(tx, []byte(peer+"/"))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read the queue for %s: %w", peer, err)
	}
	return out, nil
}

// queuedOutgoing returns the queued transfers whose index keys start
// with prefix, in key order: by peer, then oldest first.
func queuedOutgoing(tx *bolt.Tx, prefix []byte) ([]Outgoing, error) {
	var out []Outgoing
	records := tx.Bucket(bucketOutgoing)
	c := tx.Bucket(bucketOutgoingQueued).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		id := k[bytes.IndexByte(k, '/')+1+timeLen:]
		var o Outgoing
		switch err := getJSON(records, id, &o); {
		case errors.Is(err, ErrNotFound):
			continue // a stray index entry (index.go)
		case err != nil:
			return nil, fmt.Errorf("queued transfer %s: %w", id, err)
		}
		out = append(out, o)
	}
	return out, nil
}

// QueuedPeers returns the peers with transfers queued for them.
func (s *Store) QueuedPeers() ([]string, error) {
	var peers []string
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutgoingQueued).Cursor()
		for k, _ := c.First(); k != nil; {
			peer := k[:bytes.IndexByte(k, '/')]
			peers = append(peers, string(peer))
			k, _ = c.Seek(append(bytes.Clone(peer), '/'+1)) // past the peer's keys
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the queue: %w", err)
	}
	return peers, nil
}
