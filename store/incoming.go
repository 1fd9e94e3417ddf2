package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/punchdrop/punchdrop/transfer"
)

// The store is the Receiver's transfer.Journal. This package imports
// transfer for the journal's types, and transfer never imports this one:
// the protocol says what a resume needs, the database keeps it.
var _ transfer.Journal = (*Store)(nil)

// Each incoming transfer is a bucket in the incoming bucket, keyed
// "<peer>/<id>": its record under keyMeta and, until it is received, the
// hashes of its verified chunks under keyChunks, keyed by big-endian
// index.
var (
	keyMeta   = []byte("meta")
	keyChunks = []byte("chunks")
)

// incomingRecord is a transfer.Record as this package writes it: the
// file's format is the store's, whatever the protocol names its fields.
type incomingRecord struct {
	ID        string    `json:"id"`
	Peer      string    `json:"peer"`
	Name      string    `json:"name"`
	Size      int64     `json:"size"`
	ChunkSize int       `json:"chunk_size"`
	ModTime   time.Time `json:"mod_time"`
	Mode      uint32    `json:"mode"`
	Staging   string    `json:"staging"`
	State     string    `json:"state"` // stateReceived, or anything else while unfinished
	Final     string    `json:"final,omitempty"`
	Started   time.Time `json:"started"`
	Updated   time.Time `json:"updated"`
}

// stateReceived and stateReceiving are how a record's state is written.
const (
	stateReceived  = "done"
	stateReceiving = "receiving"
)

func diskRecord(r transfer.Record) incomingRecord {
	state := stateReceiving
	if r.State == transfer.Received {
		state = stateReceived
	}
	return incomingRecord{
		ID: r.ID, Peer: r.Peer, Name: r.Name, Size: r.Size, ChunkSize: r.ChunkSize, ModTime: r.ModTime, Mode: r.Mode,
		Staging: r.Staging, State: state, Final: r.Final, Started: r.Started, Updated: r.Updated,
	}
}

func (d incomingRecord) record() transfer.Record {
	state := transfer.Receiving
	if d.State == stateReceived {
		state = transfer.Received
	}
	return transfer.Record{
		ID: d.ID, Peer: d.Peer, Name: d.Name, Size: d.Size, ChunkSize: d.ChunkSize, ModTime: d.ModTime, Mode: d.Mode,
		Staging: d.Staging, State: state, Final: d.Final, Started: d.Started, Updated: d.Updated,
	}
}

func incomingKey(peer, id string) []byte { return []byte(peer + "/" + id) }

// noRecord is the error for peer's transfer id that has no record.
func noRecord(doing, peer, id string) error {
	return fmt.Errorf("%s %s from %s: %w", doing, id, peer, transfer.ErrNoRecord)
}

// getRecord decodes the record of a transfer's bucket.
func getRecord(b *bolt.Bucket) (transfer.Record, error) {
	var d incomingRecord
	if err := getJSON(b, keyMeta, &d); err != nil {
		return transfer.Record{}, err
	}
	return d.record(), nil
}

func putRecord(b *bolt.Bucket, r transfer.Record) error { return putJSON(b, keyMeta, diskRecord(r)) }

// StartIncoming records a new incoming transfer, replacing any earlier
// record with the same peer and ID together with its chunks.
func (s *Store) StartIncoming(rec transfer.Record) error {
	return s.batch(func(tx *bolt.Tx) error {
		parent := tx.Bucket(bucketIncoming)
		u, err := loadUsage(parent, rec.Peer)
		if err != nil {
			return err
		}
		key := incomingKey(rec.Peer, rec.ID)
		if old := parent.Bucket(key); old != nil {
			was, err := getRecord(old)
			if err != nil {
				return err
			}
			u.Count(was, -1)
			if err := incomingEntry(was).delete(tx); err != nil {
				return err
			}
			if err := parent.DeleteBucket(key); err != nil {
				return err
			}
		}
		b, err := parent.CreateBucket(key)
		if err != nil {
			return fmt.Errorf("record incoming %s: %w", rec.Name, err)
		}
		if rec.State != transfer.Received {
			if _, err := b.CreateBucket(keyChunks); err != nil {
				return err
			}
		}
		u.Count(rec, +1)
		if err := putUsage(parent, rec.Peer, u); err != nil {
			return err
		}
		if err := incomingEntry(rec).put(tx); err != nil {
			return err
		}
		return putRecord(b, rec)
	})
}

// IncomingTransfer returns the record of an incoming transfer.
func (s *Store) IncomingTransfer(peer, id string) (transfer.Record, error) {
	var rec transfer.Record
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIncoming).Bucket(incomingKey(peer, id))
		if b == nil {
			return noRecord("incoming", peer, id)
		}
		var err error
		rec, err = getRecord(b)
		return err
	})
	if err != nil {
		return rec, fmt.Errorf("read incoming transfer: %w", err)
	}
	return rec, nil
}

// RecordChunks marks chunks of an unfinished incoming transfer as held,
// with their hashes, and notes the time. Call it only once their data is
// durable on disk.
func (s *Store) RecordChunks(peer, id string, indexes []uint32, hashes [][]byte) error {
	return s.batch(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIncoming).Bucket(incomingKey(peer, id))
		if b == nil {
			return noRecord("record chunks of", peer, id)
		}
		chunks := b.Bucket(keyChunks)
		if chunks == nil {
			return fmt.Errorf("record chunks of %s from %s: received already", id, peer)
		}
		for i, index := range indexes {
			if err := chunks.Put(binary.BigEndian.AppendUint32(nil, index), hashes[i]); err != nil {
				return err
			}
		}
		rec, err := getRecord(b)
		if err != nil {
			return err
		}
		rec.Updated = time.Now().UTC()
		return putRecord(b, rec)
	})
}

// IncomingChunks calls fn for each chunk recorded for an incoming
// transfer, in index order, and stops at fn's first error, which it
// returns.
func (s *Store) IncomingChunks(peer, id string, fn func(index uint32, hash []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIncoming).Bucket(incomingKey(peer, id))
		if b == nil {
			return noRecord("chunks of", peer, id)
		}
		chunks := b.Bucket(keyChunks)
		if chunks == nil {
			return nil
		}
		return chunks.ForEach(func(k, v []byte) error {
			if len(k) != 4 {
				return fmt.Errorf("chunks of %s from %s: corrupt chunk key %x", id, peer, k)
			}
			return fn(binary.BigEndian.Uint32(k), v)
		})
	})
}

// FinishIncoming marks an incoming transfer received under final and
// forgets its chunk list, which is needed only to resume; the peer's
// oldest received records beyond MaxIncomingDone are forgotten.
func (s *Store) FinishIncoming(peer, id, final string, at time.Time) error {
	return s.batch(func(tx *bolt.Tx) error {
		parent := tx.Bucket(bucketIncoming)
		b := parent.Bucket(incomingKey(peer, id))
		if b == nil {
			return noRecord("finish incoming", peer, id)
		}
		u, err := loadUsage(parent, peer)
		if err != nil {
			return err
		}
		rec, err := getRecord(b)
		if err != nil {
			return err
		}
		u.Count(rec, -1)
		if err := incomingEntry(rec).delete(tx); err != nil {
			return err
		}
		rec.State, rec.Final, rec.Updated = transfer.Received, final, at
		u.Count(rec, +1)
		if err := incomingEntry(rec).put(tx); err != nil {
			return err
		}
		if b.Bucket(keyChunks) != nil {
			if err := b.DeleteBucket(keyChunks); err != nil {
				return err
			}
		}
		if err := putRecord(b, rec); err != nil {
			return err
		}
		if u.Done > MaxIncomingDone {
			if err := pruneDone(tx, peer, &u, MaxIncomingDone-donePruneSlack); err != nil {
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
		rec, err := getRecord(b)
		if err != nil {
			return err
		}
		u.Count(rec, -1)
		if err := incomingEntry(rec).delete(tx); err != nil {
			return err
		}
		if err := parent.DeleteBucket(key); err != nil {
			return err
		}
		return putUsage(parent, peer, u)
	})
}

// UnfinishedIncoming returns the incoming transfers not received, least
// recently updated first: peer's, or every peer's when peer is "". It
// reads unfinished records only.
func (s *Store) UnfinishedIncoming(peer string) ([]transfer.Record, error) {
	var out []transfer.Record
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		out, err = unfinishedIncoming(tx, peer)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("unfinished incoming transfers: %w", err)
	}
	slices.SortStableFunc(out, func(a, b transfer.Record) int { return a.Updated.Compare(b.Updated) })
	return out, nil
}

// unfinishedIncoming returns peer's unfinished records, or every peer's
// when peer is "", ordered by peer and ID.
func unfinishedIncoming(tx *bolt.Tx, peer string) ([]transfer.Record, error) {
	var prefix []byte
	if peer != "" {
		prefix = incomingKey(peer, "")
	}
	var out []transfer.Record
	records := tx.Bucket(bucketIncoming)
	c := tx.Bucket(bucketIncomingOpen).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		b := records.Bucket(k)
		if b == nil {
			continue // a stray index entry (index.go)
		}
		rec, err := getRecord(b)
		if err != nil {
			return nil, fmt.Errorf("unfinished transfer %s: %w", k, err)
		}
		out = append(out, rec)
	}
	return out, nil
}
