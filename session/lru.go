package session

import "container/list"

// lru is a map that holds at most max keys: adding one more forgets the
// key used longest ago. Whatever the network makes a node remember (per
// source address, per key, per nonce) is kept in one, so that no flood can
// grow it. It does no locking; its owner does.
type lru[K comparable, V any] struct {
	max   int
	items map[K]*list.Element // of *lruItem[K, V]
	order list.List           // front: most recently used
}

type lruItem[K comparable, V any] struct {
	key K
	val V
}

func newLRU[K comparable, V any](max int) *lru[K, V] {
	return &lru[K, V]{max: max, items: make(map[K]*list.Element)}
}

// get returns the value of key and marks it used.
func (c *lru[K, V]) get(key K) (V, bool) {
	e, ok := c.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*lruItem[K, V]).val, true
}

// put sets the value of key and marks it used, forgetting the key used
// longest ago if that makes one too many.
func (c *lru[K, V]) put(key K, val V) {
	if e, ok := c.items[key]; ok {
		e.Value.(*lruItem[K, V]).val = val
		c.order.MoveToFront(e)
		return
	}
	c.items[key] = c.order.PushFront(&lruItem[K, V]{key: key, val: val})
	if len(c.items) > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*lruItem[K, V]).key)
	}
}

// remove forgets key.
func (c *lru[K, V]) remove(key K) {
	if e, ok := c.items[key]; ok {
		c.order.Remove(e)
		delete(c.items, key)
	}
}
