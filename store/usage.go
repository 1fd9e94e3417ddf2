package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
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

// IncomingUsage sums up what one peer holds in incoming transfers. The
// store keeps it up to date with every change to the peer's records, so
// reading it costs the same however many records the peer has.
type IncomingUsage struct {
	Unfinished int   // transfers not done
	Staged     int64 // their sizes added up: each reserves its whole size
	Done       int   // finished transfers remembered
}

// count adds rec to the usage (sign +1) or takes it out (sign -1).
func (u *IncomingUsage) count(rec Incoming, sign int) {
	if rec.State == StateDone {
		u.Done += sign
		return
	}
	u.Unfinished += sign
	u.Staged += int64(sign) * rec.Size
}

// IncomingUsage returns what peer holds in incoming transfers.
func (s *Store) IncomingUsage(peer string) (IncomingUsage, error) {
	var u IncomingUsage
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

// UnfinishedIncoming returns peer's transfers that are not done, least
// recently updated first. It reads every record of the peer: call it
// when a limit is reached, not for every offer.
func (s *Store) UnfinishedIncoming(peer string) ([]Incoming, error) {
	var out []Incoming
	err := s.db.View(func(tx *bolt.Tx) error {
		return forEachOfPeer(tx.Bucket(bucketIncoming), peer, func(_ []byte, b *bolt.Bucket) error {
			if b.Bucket(keyChunks) == nil {
				return nil // done: its chunk list went
			}
			var in Incoming
			if err := getJSON(b, keyMeta, &in); err != nil {
				return err
			}
			if in.State != StateDone {
				out = append(out, in)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("unfinished incoming transfers of %s: %w", peer, err)
	}
	slices.SortStableFunc(out, func(a, b Incoming) int { return a.Updated.Compare(b.Updated) })
	return out, nil
}

// usageKey is where a peer's IncomingUsage is kept in the incoming
// bucket: a plain value beside the transfers' buckets, whose keys start
// with a node ID, never with a NUL byte.
func usageKey(peer string) []byte { return []byte("\x00usage/" + peer) }

// usageLen is the encoded usage: three big-endian 64-bit counts.
const usageLen = 3 * 8

// loadUsage reads peer's usage, or sums it up from the peer's records
// when it was never kept (a database written before it was, or by a
// test that wrote records by hand).
func loadUsage(parent *bolt.Bucket, peer string) (IncomingUsage, error) {
	var u IncomingUsage
	if v := parent.Get(usageKey(peer)); v != nil {
		if len(v) != usageLen {
			return u, fmt.Errorf("corrupt incoming usage of %s", peer)
		}
		u.Unfinished = int(binary.BigEndian.Uint64(v))
		u.Staged = int64(binary.BigEndian.Uint64(v[8:]))
		u.Done = int(binary.BigEndian.Uint64(v[16:]))
		return u, nil
	}
	err := forEachOfPeer(parent, peer, func(_ []byte, b *bolt.Bucket) error {
		var in Incoming
		if err := getJSON(b, keyMeta, &in); err != nil {
			return err
		}
		u.count(in, +1)
		return nil
	})
	return u, err
}

func putUsage(parent *bolt.Bucket, peer string, u IncomingUsage) error {
	v := binary.BigEndian.AppendUint64(make([]byte, 0, usageLen), uint64(u.Unfinished))
	v = binary.BigEndian.AppendUint64(v, uint64(u.Staged))
	v = binary.BigEndian.AppendUint64(v, uint64(u.Done))
	return parent.Put(usageKey(peer), v)
}

// forEachOfPeer calls fn with the key and bucket of each of peer's
// incoming transfers; their keys start with the peer's ID and a slash.
// The key is valid during fn only.
func forEachOfPeer(parent *bolt.Bucket, peer string, fn func(key []byte, b *bolt.Bucket) error) error {
	prefix := incomingKey(peer, "")
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
func pruneDone(parent *bolt.Bucket, peer string, u *IncomingUsage, keep int) error {
	type done struct {
		key []byte
		rec Incoming
	}
	var all []done
	err := forEachOfPeer(parent, peer, func(k []byte, b *bolt.Bucket) error {
		var in Incoming
		if err := getJSON(b, keyMeta, &in); err != nil {
			return err
		}
		if in.State == StateDone {
			all = append(all, done{bytes.Clone(k), in})
		}
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortStableFunc(all, func(a, b done) int { return a.rec.Updated.Compare(b.rec.Updated) })
	for _, d := range all[:max(len(all)-keep, 0)] {
		if err := parent.DeleteBucket(d.key); err != nil {
			return fmt.Errorf("forget done incoming %s: %w", d.key, err)
		}
		u.count(d.rec, -1)
	}
	return nil
}
