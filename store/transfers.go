package store

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Transfer states, as `punchdrop status` shows them.
const (
	StateQueued    = "queued"
	StateSending   = "sending"
	StateReceiving = "receiving"
	StateDone      = "done"
	StateFailed    = "failed"
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

// Incoming is a file being received from a peer. Its verified chunks are
// kept beside it, each recorded only once its data is durable.
type Incoming struct {
	ID        string    `json:"id"`
	Peer      string    `json:"peer"`
	Name      string    `json:"name"` // safe relative name it will get
	Size      int64     `json:"size"`
	ChunkSize int       `json:"chunk_size"`
	ModTime   time.Time `json:"mod_time"`
	Mode      uint32    `json:"mode"`
	Staging   string    `json:"staging"` // relative to the downloads folder
	State     string    `json:"state"`
	Final     string    `json:"final,omitempty"` // relative name in downloads once done
	Started   time.Time `json:"started"`
	Updated   time.Time `json:"updated"`
}

var (
	keyMeta   = []byte("meta")
	keyChunks = []byte("chunks")
)

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

func incomingKey(peer, id string) []byte { return []byte(peer + "/" + id) }

// StartIncoming records a new incoming transfer, replacing any earlier
// record with the same peer and ID together with its chunks.
func (s *Store) StartIncoming(in Incoming) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		parent := tx.Bucket(bucketIncoming)
		u, err := loadUsage(parent, in.Peer)
		if err != nil {
			return err
		}
		key := incomingKey(in.Peer, in.ID)
		if old := parent.Bucket(key); old != nil {
			var was Incoming
			if err := getJSON(old, keyMeta, &was); err != nil {
				return err
			}
			u.count(was, -1)
			if err := parent.DeleteBucket(key); err != nil {
				return err
			}
		}
		b, err := parent.CreateBucket(key)
		if err != nil {
			return fmt.Errorf("record incoming %s: %w", in.Name, err)
		}
		if _, err := b.CreateBucket(keyChunks); err != nil {
			return err
		}
		u.count(in, +1)
		if err := putUsage(parent, in.Peer, u); err != nil {
			return err
		}
		return putJSON(b, keyMeta, in)
	})
}

// IncomingTransfer returns the record of an incoming transfer and calls
// chunk for each chunk recorded, in index order. It returns ErrNotFound
// when there is none.
func (s *Store) IncomingTransfer(peer, id string, chunk func(index uint32, hash []byte)) (Incoming, error) {
	var in Incoming
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIncoming).Bucket(incomingKey(peer, id))
		if b == nil {
			return ErrNotFound
		}
		if err := getJSON(b, keyMeta, &in); err != nil {
			return err
		}
		if chunks := b.Bucket(keyChunks); chunks != nil && chunk != nil {
			return chunks.ForEach(func(k, v []byte) error {
				if len(k) != 4 {
					return fmt.Errorf("corrupt chunk key %x", k)
				}
				chunk(binary.BigEndian.Uint32(k), v)
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return in, fmt.Errorf("incoming %s from %s: %w", id, peer, err)
	}
	return in, nil
}

// RecordChunks marks chunks of an incoming transfer as held, with their
// hashes, and notes the time. Call it only once their data is durable on
// disk.
func (s *Store) RecordChunks(peer, id string, indexes []uint32, hashes [][]byte) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIncoming).Bucket(incomingKey(peer, id))
		if b == nil {
			return fmt.Errorf("record chunks of %s: %w", id, ErrNotFound)
		}
		chunks := b.Bucket(keyChunks)
		for i, index := range indexes {
			if err := chunks.Put(binary.BigEndian.AppendUint32(nil, index), hashes[i]); err != nil {
				return err
			}
		}
		var in Incoming
		if err := getJSON(b, keyMeta, &in); err != nil {
			return err
		}
		in.Updated = time.Now().UTC()
		return putJSON(b, keyMeta, in)
	})
}

// IncomingChunks calls fn for each chunk recorded for an incoming
// transfer, in index order, and stops at fn's first error, which it
// returns. It returns ErrNotFound when there is no such transfer.
func (s *Store) IncomingChunks(peer, id string, fn func(index uint32, hash []byte) error) error {
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIncoming).Bucket(incomingKey(peer, id))
		if b == nil {
			return ErrNotFound
		}
		chunks := b.Bucket(keyChunks)
		if chunks == nil {
			return nil
		}
		return chunks.ForEach(func(k, v []byte) error {
			if len(k) != 4 {
				return fmt.Errorf("corrupt chunk key %x", k)
			}
			return fn(binary.BigEndian.Uint32(k), v)
		})
	})
	if err != nil {
		return fmt.Errorf("chunks of incoming %s from %s: %w", id, peer, err)
	}
	return nil
}

// UpdateIncoming changes an incoming transfer's record with fn. A record
// whose state becomes done loses its chunk list, which is needed only to
// resume, and the peer's oldest done records beyond MaxIncomingDone are
// forgotten.
func (s *Store) UpdateIncoming(peer, id string, fn func(*Incoming)) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		parent := tx.Bucket(bucketIncoming)
		b := parent.Bucket(incomingKey(peer, id))
		if b == nil {
			return fmt.Errorf("update incoming %s: %w", id, ErrNotFound)
		}
		u, err := loadUsage(parent, peer)
		if err != nil {
			return err
		}
		var in Incoming
		if err := getJSON(b, keyMeta, &in); err != nil {
			return err
		}
		u.count(in, -1)
		fn(&in)
		u.count(in, +1)
		if in.State == StateDone && b.Bucket(keyChunks) != nil {
			if err := b.DeleteBucket(keyChunks); err != nil {
				return err
			}
		}
		if err := putJSON(b, keyMeta, in); err != nil {
			return err
		}
		if u.Done > MaxIncomingDone {
			if err := pruneDone(parent, peer, &u, MaxIncomingDone-donePruneSlack); err != nil {
				return err
			}
		}
		return putUsage(parent, peer, u)
	})
}

// DeleteIncoming forgets an incoming transfer and its chunks.
func (s *Store) DeleteIncoming(peer, id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		parent := tx.Bucket(bucketIncoming)
		key := incomingKey(peer, id)
		b := parent.Bucket(key)
		if b == nil {
			return nil
		}
		u, err := loadUsage(parent, peer)
		if err != nil {
			return err
		}
		var in Incoming
		if err := getJSON(b, keyMeta, &in); err != nil {
			return err
		}
		u.count(in, -1)
		if err := parent.DeleteBucket(key); err != nil {
			return err
		}
		return putUsage(parent, peer, u)
	})
}

// IncomingTransfers returns every incoming transfer record.
func (s *Store) IncomingTransfers() ([]Incoming, error) {
	out := []Incoming{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIncoming).ForEachBucket(func(k []byte) error {
			var in Incoming
			if err := getJSON(tx.Bucket(bucketIncoming).Bucket(k), keyMeta, &in); err != nil {
				return fmt.Errorf("decode incoming %s: %w", k, err)
			}
			out = append(out, in)
			return nil
		})
	})
	return out, err
}

// OutgoingTransfer returns one outgoing transfer.
func (s *Store) OutgoingTransfer(id string) (Outgoing, error) {
	return get[Outgoing](s.db, bucketOutgoing, id, "outgoing transfer")
}
