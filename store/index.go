package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/punchdrop/punchdrop/transfer"
)

// Indexes. The transfers' records stay where they are (outgoing ones by
// ID, incoming ones by peer and ID); these buckets hold keys only, each
// naming one record, so that what the agent reads often costs what it
// reads and not the whole history:
//
//	outgoing-queued  "<peer>/" time(queued) id   a peer's queue, oldest first: a send worker's wake
//	outgoing-ended   time(updated) id            done and failed, by when they ended: status, pruning
//	incoming-open    "<peer>/<id>"               unfinished: status, admission, start-up tidying
//	incoming-ended   time(updated) "<peer>/<id>" received, by when: status, pruning
//
// Each record is in exactly one of its direction's indexes, chosen by its
// state (outgoingEntry, incomingEntry). Every write of a record moves its
// entry in the same transaction.
var (
	bucketOutgoingQueued = []byte("outgoing-queued")
	bucketOutgoingEnded  = []byte("outgoing-ended")
	bucketIncomingOpen   = []byte("incoming-open")
	bucketIncomingEnded  = []byte("incoming-ended")
	indexBuckets         = [][]byte{bucketOutgoingQueued, bucketOutgoingEnded, bucketIncomingOpen, bucketIncomingEnded}
)

// appendFill is how full bbolt fills a page it splits, in the buckets
// whose keys begin with a time (outgoing records, whose IDs do, and the
// indexes): new keys come at the end, so the pages left behind are not
// written again, and bbolt's default of half full would leave half of
// every page empty for good.
const appendFill = 0.9

// An index entry naming no record (a stray entry) can only come from a
// file damaged in a way Open's check does not see: the records are what
// counts, so readers skip it, and a prune drops it.

// present is the value of every index entry. Not nil: within a
// transaction bbolt reads a nil value back as nil, which is how it marks
// a nested bucket.
var present = []byte{}

// timeLen is the length of a time in an index key: big-endian Unix
// nanoseconds, so that keys sort by time.
const timeLen = 8

func timeKey(t time.Time) []byte {
	var n uint64
	if t.After(time.Unix(0, 0)) {
		n = uint64(t.UnixNano())
	}
	return binary.BigEndian.AppendUint64(make([]byte, 0, timeLen+64), n)
}

// indexEntry is one key of an index.
type indexEntry struct{ bucket, key []byte }

func (e indexEntry) put(tx *bolt.Tx) error {
	b := tx.Bucket(e.bucket)
	b.FillPercent = appendFill
	return b.Put(e.key, present)
}

func (e indexEntry) delete(tx *bolt.Tx) error { return tx.Bucket(e.bucket).Delete(e.key) }

// outgoingEntry is where o is indexed.
func outgoingEntry(o Outgoing) indexEntry {
	if o.State == OutgoingDone || o.State == OutgoingFailed {
		return indexEntry{bucketOutgoingEnded, append(timeKey(o.Updated), o.ID...)}
	}
	return indexEntry{bucketOutgoingQueued, append(append([]byte(o.Peer+"/"), timeKey(o.Queued)...), o.ID...)}
}

// incomingEntry is where rec is indexed.
func incomingEntry(rec transfer.Record) indexEntry {
	if rec.State == transfer.Received {
		return indexEntry{bucketIncomingEnded, append(timeKey(rec.Updated), incomingKey(rec.Peer, rec.ID)...)}
	}
	return indexEntry{bucketIncomingOpen, incomingKey(rec.Peer, rec.ID)}
}

// indexKeyShapes says what the keys of each index look like: Open calls
// a key of another shape damage, so readers can slice keys safely.
var indexKeyShapes = map[string]func(k []byte) bool{
	string(bucketOutgoingQueued): func(k []byte) bool {
		i := bytes.IndexByte(k, '/')
		return i >= 0 && len(k) > i+1+timeLen
	},
	string(bucketOutgoingEnded): func(k []byte) bool { return len(k) > timeLen },
	string(bucketIncomingOpen):  func(k []byte) bool { return bytes.IndexByte(k, '/') >= 0 },
	string(bucketIncomingEnded): func(k []byte) bool {
		return len(k) > timeLen && bytes.IndexByte(k[timeLen:], '/') >= 0
	},
}

// verifyIndex checks that every entry of an index is a key of its shape
// with an empty value.
func verifyIndex(b *bolt.Bucket, name string) error {
	shape := indexKeyShapes[name]
	return b.ForEach(func(k, v []byte) error {
		if v == nil || len(v) != 0 || !shape(k) {
			return fmt.Errorf("%w: index %s has entry %q", ErrDamaged, name, k)
		}
		return nil
	})
}

// upgradeBatch is how many records one transaction of the index upgrade
// indexes: a few megabytes of pages, so a history of millions is indexed
// without holding it all in one transaction's memory.
const upgradeBatch = 50_000

// buildIndexes makes the indexes afresh from the records, upgradeBatch
// records per transaction. A crash half way leaves the file's older
// schema number, and the next Open starts again from empty indexes.
func (s *Store) buildIndexes() error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range indexBuckets {
			if tx.Bucket(name) != nil {
				if err := tx.DeleteBucket(name); err != nil {
					return err
				}
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("make indexes: %w", err)
	}
	err = s.inBatches(bucketOutgoing, upgradeBatch, func(tx *bolt.Tx, k, v []byte) error {
		var o Outgoing
		if err := getJSON(tx.Bucket(bucketOutgoing), k, &o); err != nil {
			return fmt.Errorf("%w: outgoing %q does not decode: %v", ErrDamaged, k, err)
		}
		return outgoingEntry(o).put(tx)
	})
	if err != nil {
		return fmt.Errorf("index outgoing transfers: %w", err)
	}
	err = s.inBatches(bucketIncoming, upgradeBatch, func(tx *bolt.Tx, k, v []byte) error {
		if v != nil {
			return nil // a peer's usage counters
		}
		rec, err := getRecord(tx.Bucket(bucketIncoming).Bucket(k))
		if err != nil {
			return fmt.Errorf("%w: incoming %q does not decode: %v", ErrDamaged, k, err)
		}
		return incomingEntry(rec).put(tx)
	})
	if err != nil {
		return fmt.Errorf("index incoming transfers: %w", err)
	}
	return nil
}

// inBatches calls fn with every key and value of the top-level bucket
// name, in key order, at most batch of them per write transaction.
func (s *Store) inBatches(name []byte, batch int, fn func(tx *bolt.Tx, k, v []byte) error) error {
	var resume []byte
	for {
		err := s.db.Update(func(tx *bolt.Tx) error {
			c := tx.Bucket(name).Cursor()
			k, v := c.First()
			if resume != nil {
				k, v = c.Seek(resume)
			}
			for n := 0; k != nil; k, v = c.Next() {
				if n == batch {
					resume = bytes.Clone(k)
					return nil
				}
				if err := fn(tx, k, v); err != nil {
					return err
				}
				n++
			}
			resume = nil
			return nil
		})
		if err != nil || resume == nil {
			return err
		}
	}
}
