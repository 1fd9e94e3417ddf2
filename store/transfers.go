package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Transfer states, as `punchdrop status` shows them.
const (
	StateQueued  = "queued"
	StateSending = "sending"
	StateDone    = "done"
	StateFailed  = "failed"
)

// Outgoing is a file queued for, or sent to, one peer.
type Outgoing struct {
	ID      string    `json:"id"`   // transfer ID, hex
	Peer    string    `json:"peer"` // node ID
	Path    string    `json:"path"` // absolute path of the source file
	Name    string    `json:"name"` // relative name offered ("folder/a.txt")
	Size    int64     `json:"size"`
	State   string    `json:"state"`
	Error   string    `json:"error,omitempty"`  // why the last attempt failed
	Tries   int       `json:"tries"`            // attempts that failed
	Final   string    `json:"final,omitempty"`  // the name the receiver stored it under
	Outbox  string    `json:"outbox,omitempty"` // key of the outbox entry it came from
	Queued  time.Time `json:"queued"`
	Updated time.Time `json:"updated"`
}

// AddOutgoing queues transfers in one transaction.
func (s *Store) AddOutgoing(items ...Outgoing) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutgoing)
		for _, o := range items {
			if err := putJSON(b, []byte(o.ID), o); err != nil {
				return fmt.Errorf("queue %s: %w", o.Name, err)
			}
		}
		return nil
	})
}

// UpdateOutgoing changes a queued transfer with fn.
func (s *Store) UpdateOutgoing(id string, fn func(*Outgoing)) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutgoing)
		var o Outgoing
		if err := getJSON(b, []byte(id), &o); err != nil {
			return fmt.Errorf("update transfer %s: %w", id, err)
		}
		fn(&o)
		return putJSON(b, []byte(id), o)
	})
}

// OutgoingTransfers returns every outgoing transfer, ordered by ID.
func (s *Store) OutgoingTransfers() ([]Outgoing, error) {
	return list[Outgoing](s.db, bucketOutgoing, "outgoing transfer")
}

// OutgoingTransfer returns one outgoing transfer.
func (s *Store) OutgoingTransfer(id string) (Outgoing, error) {
	return get[Outgoing](s.db, bucketOutgoing, id, "outgoing transfer")
}
