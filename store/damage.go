package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A damaged database (a disk error, a crash on a filesystem that lost
// writes, a stray tool writing into it) must never take the agent down
// with a Go panic, nor leave it refusing to start for ever: bbolt panics
// when it follows a page that is not what it expects. Open therefore
// checks the whole file before it is used: bbolt's own consistency check,
// then a read of every record this package wrote. Either failing, or
// panicking, makes Open return ErrDamaged, and Reset moves the file aside
// and starts a fresh one.
//
// The outbox folder is the source of truth for what is to be sent, so a
// fresh start loses no file: the agent's start-up scan queues everything
// still in the outbox again. What Reset carries over from the damaged file
// is what the folders cannot tell: the peers, as far as they can be read.

// ErrDamaged is returned (wrapped) by Open when the file is damaged.
var ErrDamaged = errors.New("state database is damaged")

// safely runs fn and turns a panic into an error: bbolt's answer to a
// page it cannot make sense of. A page number beyond the file makes bbolt
// read outside its memory map, a fault that would kill the process; on
// this goroutine it becomes a panic too.
func safely(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrDamaged, r)
		}
	}()
	return fn()
}

// verify reads the whole file: every value this package stores, which
// must decode, then bbolt's consistency check (free pages too). The read
// comes first and runs on the caller's goroutine, where safely catches
// faults: Check runs on a goroutine of its own, and touches no page the
// read did not, but the free list, which Open read already.
func (s *Store) verify() error {
	return s.db.View(func(tx *bolt.Tx) error {
		err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			switch {
			case string(name) == string(bucketMeta):
				return nil // raw values, checked by init
			case indexKeyShapes[string(name)] != nil:
				return verifyIndex(b, string(name))
			}
			return verifyBucket(b, string(name))
		})
		if err != nil {
			return err
		}
		for checkErr := range tx.Check() {
			if err == nil { // read them all: Check stops only then
				err = fmt.Errorf("%w: %v", ErrDamaged, checkErr)
			}
		}
		return err
	})
}

// verifyBucket checks that every value in b and its sub-buckets is JSON.
func verifyBucket(b *bolt.Bucket, where string) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			return verifyBucket(b.Bucket(k), where+"/"+string(k))
		}
		switch {
		case strings.HasSuffix(where, "/"+string(keyChunks)):
			return nil // an incoming transfer's chunk hashes: raw bytes
		case where == string(bucketIncoming) && bytes.HasPrefix(k, usageKey("")):
			if len(v) != usageLen {
				return fmt.Errorf("%w: incoming usage %q is %d bytes", ErrDamaged, k, len(v))
			}
			return nil
		}
		if !json.Valid(v) {
			return fmt.Errorf("%w: record %q in %s does not decode", ErrDamaged, k, where)
		}
		return nil
	})
}

// ResetReport says what Reset did.
type ResetReport struct {
	MovedTo string // where the damaged file is now
	Peers   int    // peers carried over to the fresh file
}

// Reset moves the damaged database at path aside (to
// "<path>.damaged-<time>") and opens a fresh one in its place, carrying
// over every peer that can still be read from the old one, and whether
// sending was paused.
func Reset(path string, now time.Time) (*Store, ResetReport, error) {
	rep := ResetReport{MovedTo: path + ".damaged-" + now.UTC().Format("20060102T150405Z")}
	if err := os.Rename(path, rep.MovedTo); err != nil {
		return nil, rep, fmt.Errorf("move damaged state aside: %w", err)
	}
	peers, paused := salvage(rep.MovedTo)
	s, err := Open(path)
	if err != nil {
		return nil, rep, err
	}
	for _, p := range peers {
		if err := s.PutPeer(p); err != nil {
			s.Close()
			return nil, rep, fmt.Errorf("carry peers over: %w", err)
		}
	}
	if paused {
		if err := s.SetPaused(true); err != nil {
			s.Close()
			return nil, rep, err
		}
	}
	rep.Peers = len(peers)
	return s, rep, nil
}

// salvage reads what it can of the peers and the pause flag in a damaged
// file. It never fails: what cannot be read is left behind.
func salvage(path string) (peers []Peer, paused bool) {
	safely(func() error {
		db, err := bolt.Open(path, fileMode, &bolt.Options{ReadOnly: true, Timeout: lockTimeout})
		if err != nil {
			return err
		}
		defer db.Close()
		return db.View(func(tx *bolt.Tx) error {
			if meta := tx.Bucket(bucketMeta); meta != nil {
				paused = meta.Get(keyPaused) != nil
			}
			b := tx.Bucket(bucketPeers)
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				var p Peer
				if json.Unmarshal(v, &p) == nil && p.ID.String() == string(k) {
					peers = append(peers, p)
				}
				return nil
			})
		})
	})
	return peers, paused
}
