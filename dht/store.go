package dht

import (
	"container/list"
	"sync"
	"time"

	"github.com/anacrolix/dht/v2/bep44"
	"github.com/anacrolix/torrent/bencode"

	"github.com/punchdrop/punchdrop/rendezvous"
)

// DefaultMaxItems bounds the items one node stores for others. A stored
// item takes about 1.2 KB at most (a 1000-byte value, key, signature,
// salt), so 10,000 items are 12 MB: room for every record that lands on a
// node of a busy private DHT, and a cap on what a flood of puts can take
// from a public one.
const DefaultMaxItems = 10_000

// StoredItem is an item as a node stored it, for Config.OnStore.
type StoredItem struct {
	Target rendezvous.Target
	Key    [32]byte // "k"
	Salt   []byte
	Seq    int64
	Sig    [64]byte
	// Value is "v" bencoded, exactly the bytes the node keeps and serves.
	Value []byte
}

// itemStore is the BEP 44 store of a node: items in memory, at most max
// of them, each dropped lifetime after it was last put. The library's
// bep44.Wrapper in front of it checks signatures, sizes and sequence
// numbers; itemStore keeps what passed. Its own memory store grows without
// bound and forgets expired items only when they are asked for.
type itemStore struct {
	max      int
	lifetime time.Duration
	now      func() time.Time
	onStore  func(StoredItem)

	mu    sync.Mutex // guards following
	items map[bep44.Target]*list.Element
	order list.List // of *storeEntry, least recently put first
}

type storeEntry struct {
	item  *bep44.Item
	putAt time.Time
}

func newItemStore(max int, lifetime time.Duration, onStore func(StoredItem)) *itemStore {
	return &itemStore{max: max, lifetime: lifetime, now: time.Now, onStore: onStore, items: map[bep44.Target]*list.Element{}}
}

// Put stores i, replacing the item of the same target; when the store is
// full it first forgets the least recently put item.
func (s *itemStore) Put(i *bep44.Item) error {
	v, err := bencode.Marshal(i.V)
	if err != nil {
		return err // the wrapper marshalled it already; cannot happen
	}
	target := i.Target()
	s.mu.Lock()
	now := s.now()
	s.expireLocked(now)
	if e, ok := s.items[target]; ok {
		s.order.Remove(e)
	} else if len(s.items) >= s.max {
		oldest := s.order.Front()
		delete(s.items, oldest.Value.(*storeEntry).item.Target())
		s.order.Remove(oldest)
	}
	s.items[target] = s.order.PushBack(&storeEntry{item: i, putAt: now})
	s.mu.Unlock()
	if s.onStore != nil {
		s.onStore(StoredItem{Target: rendezvous.Target(target), Key: i.K, Salt: i.Salt, Seq: i.Seq, Sig: i.Sig, Value: v})
	}
	return nil
}

// Get returns the item stored for t.
func (s *itemStore) Get(t bep44.Target) (*bep44.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.now())
	e, ok := s.items[t]
	if !ok {
		return nil, bep44.ErrItemNotFound
	}
	return e.Value.(*storeEntry).item, nil
}

// Del forgets the item stored for t.
func (s *itemStore) Del(t bep44.Target) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.items[t]; ok {
		s.order.Remove(e)
		delete(s.items, t)
	}
	return nil
}

// Len returns how many items are stored.
func (s *itemStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(s.now())
	return len(s.items)
}

// expireLocked forgets items last put more than lifetime before now: they
// are at the front, in the order they were put.
func (s *itemStore) expireLocked(now time.Time) {
	for e := s.order.Front(); e != nil; e = s.order.Front() {
		entry := e.Value.(*storeEntry)
		if now.Sub(entry.putAt) <= s.lifetime {
			return
		}
		delete(s.items, entry.item.Target())
		s.order.Remove(e)
	}
}
