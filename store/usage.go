package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/punchdrop/punchdrop/transfer"
)

// Bounds on the finished incoming transfers remembered per peer. A done
// record only answers a re-offer of a file whose END_ACK the sender
// missed, which it makes within minutes; so a peer that sends many small
// files, or a hostile one, cannot grow the file without bound.
const (
	// MaxIncomingDone bounds the done records kept per peer; the least
	// recently updated go first. A sender has at most a few dozen files
	// in flight, so this is far more than a re-offer needs.
	MaxIncomingDone = 2048
	// donePruneSlack is how far below MaxIncomingDone a prune goes, so
	// the oldest done records are sought (which reads them all) once per
	// this many finished files, not on every one.
	donePruneSlack = 256
)

// IncomingUsage returns what peer holds in incoming transfers.
func (s *Store) IncomingUsage(peer string) (transfer.Usage, error) {
	var u transfer.Usage
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		u, err = loadUsage(tx.Bucket(bucketIncoming), peer)
		return err
	})
	if err != nil {
		return u, fmt.Errorf("incoming usage of %s: %w", peer, err)
	}
	return u, nil
}

// usageKey is where a peer's transfer.Usage is kept in the incoming
// bucket: a plain value beside the transfers' buckets, whose keys start
// with a node ID, never with a NUL byte.
func usageKey(peer string) []byte { return []byte("\x00usage/" + peer) }

// usageLen is the encoded usage: three big-endian 64-bit counts.
const usageLen = 3 * 8

// loadUsage reads peer's usage, or sums it up from the peer's records
// when it was never kept (a database written before it was, or by a
// test that wrote records by hand).
func loadUsage(parent *bolt.Bucket, peer string) (transfer.Usage, error) {
	var u transfer.Usage
	if v := parent.Get(usageKey(peer)); v != nil {
		if len(v) != usageLen {
			return u, fmt.Errorf("corrupt incoming usage of %s", peer)
		}
		u.Unfinished = int(binary.BigEndian.Uint64(v))
		u.Staged = int64(binary.BigEndian.Uint64(v[8:]))
		u.Done = int(binary.BigEndian.Uint64(v[16:]))
		return u, nil
	}
	err := forEachIncoming(parent, peer, func(_ []byte, b *bolt.Bucket) error {
		rec, err := getRecord(b)
		if err != nil {
			return err
		}
		u.Count(rec, +1)
		return nil
	})
	return u, err
}

func putUsage(parent *bolt.Bucket, peer string, u transfer.Usage) error {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, usageLen), uint64(u.Unfinished))
	v = binary.BigEndian.AppendUint64(v, uint64(u.Staged))
	v = binary.BigEndian.AppendUint64(v, uint64(u.Done))
	return parent.Put(usageKey(peer), v)
}

// forEachIncoming calls fn with the key and bucket of each of peer's
// incoming transfers (their keys start with the peer's ID and a slash),
// or of every peer's when peer is "". The key is valid during fn only.
func forEachIncoming(parent *bolt.Bucket, peer string, fn func(key []byte, b *bolt.Bucket) error) error {
	prefix := []byte(nil)
	if peer != "" {
		prefix = incomingKey(peer, "")
	}
	c := parent.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if v != nil {
			continue // not a bucket
		}
		if err := fn(k, parent.Bucket(k)); err != nil {
			return fmt.Errorf("incoming %s: %w", k, err)
		}
	}
	return nil
}

// pruneDone forgets peer's least recently updated done records, down
// to keep, and counts them out of u.
func pruneDone(tx *bolt.Tx, peer string, u *transfer.Usage, keep int) error {
	parent := tx.Bucket(bucketIncoming)
	type done struct {
		key []byte
		rec transfer.Record
	}
	var all []done
	err := forEachIncoming(parent, peer, func(k []byte, b *bolt.Bucket) error {
		rec, err := getRecord(b)
		if err != nil {
			return err
		}
		if rec.State == transfer.Received {
			all = append(all, done{bytes.Clone(k), rec})
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortStableFunc(all, func(a, b done) int { return a.rec.Updated.Compare(b.rec.Updated) })
	for _, d := range all[:max(len(all)-keep, 0)] {
		if err := incomingEntry(d.rec).delete(tx); err != nil {
			return err
		}
		if err := parent.DeleteBucket(d.key); err != nil {
			return fmt.Errorf("forget done incoming %s: %w", d.key, err)
		}
		u.Count(d.rec, -1)
	}
	return nil
}
