// Package store keeps the agent's durable state in one bbolt file: peers,
// pending peer requests, received messages, and the state of file
// transfers in both directions. Every exported method is one
// all-or-nothing transaction, but PruneHistory, which forgets in many
// small ones.
package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/punchdrop/punchdrop/session"
)

// SchemaVersion is the layout this code reads and writes. Open upgrades
// older files and refuses newer ones.
//
// History: 1 peers, requests, messages; 2 adds outgoing and incoming
// transfers; 3 adds the outbox; 4 adds the indexes of transfers by peer,
// state and time (index.go). Each added buckets only, so older files
// upgrade in place: 4's indexes are made from the records there.
const SchemaVersion = 4

// fileMode keeps the database private: it names the user's peers.
const fileMode = 0o600

// lockTimeout is how long Open waits for another process to release the
// file; bbolt allows one process, so a second agent fails fast and clearly.
const lockTimeout = time.Second

// Limits that keep strangers and chatty peers from growing the file
// without bound.
const (
	// MaxRequests bounds pending peer requests. When it is reached, a new
	// request is refused (ErrTooManyRequests) rather than one dropped: a
	// flood of strangers must not push out a request the user is about
	// to accept.
	MaxRequests = 64
	// RequestMaxAge is how long an unanswered request is kept after its
	// stranger was last heard from; older ones make room for new ones.
	// A week outlasts a holiday, and a stranger who still wants in keeps
	// probing and is noted again.
	RequestMaxAge = 7 * 24 * time.Hour
	// MaxMessages bounds stored messages; the oldest goes first.
	MaxMessages = 1000
)

var (
	bucketMeta     = []byte("meta")
	bucketPeers    = []byte("peers")
	bucketRequests = []byte("requests")
	bucketMessages = []byte("messages")
	bucketOutgoing = []byte("outgoing")
	bucketIncoming = []byte("incoming")
	bucketOutbox   = []byte("outbox")
	keySchema      = []byte("schema")
	keyPaused      = []byte("paused")
)

// Errors.
var (
	// ErrNotFound is returned when a peer or request does not exist.
	ErrNotFound = errors.New("not found")
	// ErrLocked is returned by Open when another process holds the file.
	ErrLocked = errors.New("state database is in use by another punchdrop agent")
	// ErrNewerSchema is returned by Open for a file written by a newer
	// punchdrop.
	ErrNewerSchema = errors.New("state database was written by a newer punchdrop")
	// ErrTooManyRequests is returned by NoteRequest for a new request when
	// MaxRequests recent ones are pending.
	ErrTooManyRequests = errors.New("too many pending peer requests")
)

// Store is the agent's state database.
type Store struct {
	db    *bolt.DB
	group group // updates waiting to commit together (group.go)
}

// Open opens or creates the database at path (mode 0600). A damaged file
// gives an error wrapping ErrDamaged; Reset replaces it.
func Open(path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	db, err := openBolt(path)
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	s := &Store{db: db}
	if err := safely(s.verify); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	if s.db, err = compact(path, db, compactMinSize); err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	if err := safely(s.init); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	return s, nil
}

// openBolt opens the bbolt file at path; an error says ErrLocked or
// ErrDamaged when that is why it cannot.
func openBolt(path string) (*bolt.DB, error) {
	var db *bolt.DB
	err := safely(func() (err error) {
		db, err = bolt.Open(path, fileMode, &bolt.Options{Timeout: lockTimeout})
		return err
	})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, ErrLocked
	case errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrVersionMismatch):
		return nil, fmt.Errorf("%w: %w", ErrDamaged, err)
	case err != nil:
		return nil, err
	}
	return db, nil
}

// init creates the buckets a new file lacks and upgrades an older file.
func (s *Store) init() error {
	var version uint64 // the file's; 0 for a new one
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range append([][]byte{bucketMeta, bucketPeers, bucketRequests, bucketMessages, bucketOutgoing, bucketIncoming, bucketOutbox}, indexBuckets...) {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		v := meta.Get(keySchema)
		switch {
		case v == nil:
			return meta.Put(keySchema, binary.BigEndian.AppendUint64(nil, SchemaVersion))
		case len(v) != 8:
			return fmt.Errorf("%w: schema version is %d bytes", ErrDamaged, len(v))
		}
		version = binary.BigEndian.Uint64(v)
		if version > SchemaVersion {
			return fmt.Errorf("%w (schema %d, this build reads %d)", ErrNewerSchema, version, SchemaVersion)
		}
		return nil
	})
	if err != nil || version == 0 || version == SchemaVersion {
		return err
	}
	if version < 4 {
		if err := s.buildIndexes(); err != nil {
			return fmt.Errorf("upgrade from schema %d: %w", version, err)
		}
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchema, binary.BigEndian.AppendUint64(nil, SchemaVersion))
	})
}

// SetPaused remembers whether sending is paused, so that a pause outlives
// a restart.
func (s *Store) SetPaused(paused bool) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if paused {
			return tx.Bucket(bucketMeta).Put(keyPaused, []byte{1})
		}
		return tx.Bucket(bucketMeta).Delete(keyPaused)
	})
	if err != nil {
		return fmt.Errorf("remember pause: %w", err)
	}
	return nil
}

// Paused reports whether sending was left paused.
func (s *Store) Paused() (bool, error) {
	var paused bool
	err := s.db.View(func(tx *bolt.Tx) error {
		paused = tx.Bucket(bucketMeta).Get(keyPaused) != nil
		return nil
	})
	return paused, err
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Peer is a configured peer as remembered across restarts.
type Peer struct {
	ID       session.NodeID   `json:"id"`
	Name     string           `json:"name"`
	Public   netip.AddrPort   `json:"public,omitzero"`    // public address from its connection string
	Direct   []netip.AddrPort `json:"direct,omitempty"`   // its further public (global IPv6) addresses
	LAN      []netip.AddrPort `json:"lan,omitempty"`      // host candidates from its connection string
	Relay    []netip.AddrPort `json:"relay,omitempty"`    // relayed addresses from its connection string
	HardNAT  bool             `json:"hard_nat,omitempty"` // its connection string said nat=hard, or it told so since (session, rendezvous record)
	LastAddr netip.AddrPort   `json:"last_addr,omitzero"` // where the last session ran
	Added    time.Time        `json:"added"`
	// Learned are addresses learned since, oldest first (NoteLearned).
	Learned []LearnedAddr `json:"learned,omitempty"`
	// RecordSeq is the highest sequence number of the peer's rendezvous
	// record opened so far; 0 if none (RaiseRecordSeq).
	RecordSeq int64 `json:"record_seq,omitempty"`
}

// peerKey is where a peer or a request is kept: its node ID as text,
// the form older files used too.
func peerKey(id session.NodeID) []byte { return []byte(id.String()) }

// Request is an unknown node that probed us.
type Request struct {
	ID        session.NodeID `json:"id"`
	Name      string         `json:"name"`
	Addr      netip.AddrPort `json:"addr"`
	FirstSeen time.Time      `json:"first_seen"`
	LastSeen  time.Time      `json:"last_seen"`
}

// Message is a received text message.
type Message struct {
	From string    `json:"from"`
	Text string    `json:"text"`
	Time time.Time `json:"time"`
}

// PutPeer adds or replaces a peer and drops any pending request from it.
func (s *Store) PutPeer(p Peer) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := putJSON(tx.Bucket(bucketPeers), peerKey(p.ID), p); err != nil {
			return fmt.Errorf("save peer: %w", err)
		}
		return tx.Bucket(bucketRequests).Delete(peerKey(p.ID))
	})
}

// UpdatePeer changes a stored peer with fn.
func (s *Store) UpdatePeer(id session.NodeID, fn func(*Peer)) error {
	return s.updatePeer(id, "update", fn)
}

// RemovePeer forgets a peer.
func (s *Store) RemovePeer(id session.NodeID) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPeers)
		if b.Get(peerKey(id)) == nil {
			return fmt.Errorf("remove peer %s: %w", id, ErrNotFound)
		}
		return b.Delete(peerKey(id))
	})
}

// Peers returns every configured peer, ordered by ID.
func (s *Store) Peers() ([]Peer, error) {
	return list[Peer](s.db, bucketPeers, "peer")
}

// NoteRequest records a probe from an unknown node. A node already
// pending is updated (its FirstSeen kept). A new one is refused with
// ErrTooManyRequests while MaxRequests are pending, once those last heard
// from more than RequestMaxAge ago are dropped.
func (s *Store) NoteRequest(r Request) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketPeers).Get(peerKey(r.ID)) != nil {
			return nil // accepted meanwhile
		}
		b := tx.Bucket(bucketRequests)
		var old Request
		if err := getJSON(b, peerKey(r.ID), &old); err == nil {
			r.FirstSeen = old.FirstSeen
		} else if countKeys(b) >= MaxRequests {
			if err := dropStaleRequests(b, time.Now().Add(-RequestMaxAge)); err != nil {
				return err
			}
			if countKeys(b) >= MaxRequests {
				return fmt.Errorf("note request from %s: %w", r.ID, ErrTooManyRequests)
			}
		}
		return putJSON(b, peerKey(r.ID), r)
	})
}

// dropStaleRequests deletes the requests last seen before cutoff, and
// those that do not decode.
func dropStaleRequests(b *bolt.Bucket, cutoff time.Time) error {
	var stale [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var r Request
		if json.Unmarshal(v, &r) != nil || r.LastSeen.Before(cutoff) {
			stale = append(stale, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Requests returns pending peer requests.
func (s *Store) Requests() ([]Request, error) {
	return list[Request](s.db, bucketRequests, "request")
}

// DeleteRequest drops a pending request (declined).
func (s *Store) DeleteRequest(id session.NodeID) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRequests)
		if b.Get(peerKey(id)) == nil {
			return fmt.Errorf("decline %s: %w", id, ErrNotFound)
		}
		return b.Delete(peerKey(id))
	})
}

// AddMessage stores a received message, keeping at most MaxMessages.
func (s *Store) AddMessage(m Message) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMessages)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := putJSON(b, binary.BigEndian.AppendUint64(nil, seq), m); err != nil {
			return fmt.Errorf("save message: %w", err)
		}
		c := b.Cursor()
		for n, k := countKeys(b), []byte(nil); n > MaxMessages; n-- {
			if k, _ = c.First(); k == nil {
				break
			}
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
}

// Messages returns stored messages, oldest first.
func (s *Store) Messages() ([]Message, error) {
	return list[Message](s.db, bucketMessages, "message")
}

// list decodes every value of a bucket, in key order. It returns an empty,
// not nil, slice when there are none, so JSON shows [] rather than null.
func list[T any](db *bolt.DB, bucket []byte, what string) ([]T, error) {
	out := []T{}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(_, v []byte) error {
			var item T
			if err := json.Unmarshal(v, &item); err != nil {
				return fmt.Errorf("decode %s: %w", what, err)
			}
			out = append(out, item)
			return nil
		})
	})
	return out, err
}

// get decodes one record of a bucket; what names it in the error.
func get[T any](db *bolt.DB, bucket []byte, key, what string) (T, error) {
	var item T
	err := db.View(func(tx *bolt.Tx) error { return getJSON(tx.Bucket(bucket), []byte(key), &item) })
	if err != nil {
		return item, fmt.Errorf("%s %s: %w", what, key, err)
	}
	return item, nil
}

// countKeys counts a bucket's keys. Bucket.Stats would be shorter but does
// not see the changes of the running write transaction.
func countKeys(b *bolt.Bucket) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

func getJSON(b *bolt.Bucket, key []byte, v any) error {
	data := b.Get(key)
	if data == nil {
		return ErrNotFound
	}
	return json.Unmarshal(data, v)
}
