package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/punchdrop/punchdrop/transfer"
)

// Activity is what `punchdrop status` shows: every transfer not
// finished, and those that finished since a given time.
type Activity struct {
	Queued    []Outgoing        // by peer, oldest first
	Ended     []Outgoing        // done or failed since, in the order they ended
	Receiving []transfer.Record // unfinished, by peer and ID
	Received  []transfer.Record // received since, in the order they were
}

// Activity reads the transfers not finished, and those finished since
// since. It reads the indexes, so its cost does not grow with the
// history before since.
func (s *Store) Activity(since time.Time) (Activity, error) {
	var a Activity
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if a.Queued, err = queuedOutgoing(tx, nil); err != nil {
			return err
		}
		if a.Receiving, err = unfinishedIncoming(tx, ""); err != nil {
			return err
		}
		outgoing, incoming := tx.Bucket(bucketOutgoing), tx.Bucket(bucketIncoming)
		err = forEachSince(tx.Bucket(bucketOutgoingEnded), since, func(id []byte) error {
			var o Outgoing
			switch err := getJSON(outgoing, id, &o); {
			case errors.Is(err, ErrNotFound):
				return nil // a stray index entry (index.go)
			case err != nil:
				return fmt.Errorf("ended transfer %s: %w", id, err)
			}
			a.Ended = append(a.Ended, o)
			return nil
		})
		if err != nil {
			return err
		}
		return forEachSince(tx.Bucket(bucketIncomingEnded), since, func(key []byte) error {
			b := incoming.Bucket(key)
			if b == nil {
				return nil // a stray index entry (index.go)
			}
			rec, err := getRecord(b)
			if err != nil {
				return fmt.Errorf("received transfer %s: %w", key, err)
			}
			a.Received = append(a.Received, rec)
			return nil
		})
	})
	if err != nil {
		return a, fmt.Errorf("read transfers: %w", err)
	}
	return a, nil
}

// forEachSince calls fn with what each key of a time index names (the
// key without its time), from since on.
func forEachSince(index *bolt.Bucket, since time.Time, fn func(name []byte) error) error {
	c := index.Cursor()
	for k, _ := c.Seek(timeKey(since)); k != nil; k, _ = c.Next() {
		if err := fn(k[timeLen:]); err != nil {
			return err
		}
	}
	return nil
}

// pruneBatch is how many records one transaction of PruneHistory
// forgets: it commits in milliseconds, so the writes of transfers in
// flight, which wait for it, never wait much longer than for one of
// their own commits.
const pruneBatch = 1000

// PruneHistory forgets the transfers that finished before cutoff:
// outgoing ones done or failed, except those an outbox entry still waits
// on (it settles once every one of its transfers is done), and incoming
// ones received. It forgets at most pruneBatch per transaction, stops
// between two when ctx ends, and returns how many it forgot.
func (s *Store) PruneHistory(ctx context.Context, cutoff time.Time) (int, error) {
	waits := map[string]bool{} // outbox entries still queued, by key
	out, err := s.pruneIndex(ctx, bucketOutgoingEnded, cutoff, func(tx *bolt.Tx, id []byte) (bool, error) {
		records := tx.Bucket(bucketOutgoing)
		var o Outgoing
		if getJSON(records, id, &o) != nil {
			return false, nil // the entry names nothing: drop it
		}
		if o.Outbox != "" {
			queued, seen := waits[o.Outbox]
			if !seen {
				var e OutboxEntry
				queued = getJSON(tx.Bucket(bucketOutbox), []byte(o.Outbox), &e) == nil && e.State == OutboxQueued
				waits[o.Outbox] = queued
			}
			if queued {
				return true, nil
			}
		}
		return false, records.Delete(id)
	})
	if err != nil {
		return out, err
	}
	in, err := s.pruneIndex(ctx, bucketIncomingEnded, cutoff, func(tx *bolt.Tx, key []byte) (bool, error) {
		parent := tx.Bucket(bucketIncoming)
		b := parent.Bucket(key)
		if b == nil {
			return false, nil
		}
		rec, err := getRecord(b)
		if err != nil {
			return false, err
		}
		u, err := loadUsage(parent, rec.Peer)
		if err != nil {
			return false, err
		}
		u.Count(rec, -1)
		if err := putUsage(parent, rec.Peer, u); err != nil {
			return false, err
		}
		return false, parent.DeleteBucket(key)
	})
	return out + in, err
}

// pruneIndex goes through the time index up to cutoff, pruneBatch keys
// per transaction, and calls forget with what each key names (the key
// without its time). forget forgets it, or says it is kept; the key of
// what it forgot goes too. It returns how many keys went.
func (s *Store) pruneIndex(ctx context.Context, index []byte, cutoff time.Time, forget func(tx *bolt.Tx, name []byte) (kept bool, err error)) (int, error) {
	forgot := 0
	limit := timeKey(cutoff)
	var resume []byte // where the next transaction starts; nil when done
	for {
		if err := ctx.Err(); err != nil {
			return forgot, fmt.Errorf("prune history: %w", err)
		}
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(index)
			c := b.Cursor()
			k, _ := c.First()
			if resume != nil {
				k, _ = c.Seek(resume)
			}
			var keys [][]byte
			for ; k != nil && bytes.Compare(k[:timeLen], limit) < 0 && len(keys) < pruneBatch; k, _ = c.Next() {
				keys = append(keys, bytes.Clone(k))
			}
			resume = nil
			if k != nil && bytes.Compare(k[:timeLen], limit) < 0 {
				resume = bytes.Clone(k)
			}
			for _, k := range keys {
				kept, err := forget(tx, k[timeLen:])
				if err != nil {
					return err
				}
				if !kept {
					if err := b.Delete(k); err != nil {
						return err
					}
					forgot++
				}
			}
			return nil
		})
		if err != nil {
			return forgot, fmt.Errorf("prune history: %w", err)
		}
		if resume == nil {
			return forgot, nil
		}
	}
}
