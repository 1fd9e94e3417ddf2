package dht

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/anacrolix/dht/v2/bep44"
)

// testItem is a valid mutable item of key k with value v.
func testItem(t *testing.T, k byte, seq int64, v string) *bep44.Item {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = k
	it, err := bep44.NewItem(v, nil, seq, 0, ed25519.NewKeyFromSeed(seed))
	if err != nil {
		t.Fatal(err)
	}
	return it
}

// fakeClock is a settable time for the store.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func TestItemStore(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_780_000_000, 0)}
	var hooked []StoredItem
	s := newItemStore(2, time.Hour, func(it StoredItem) { hooked = append(hooked, it) })
	s.now = clock.now
	a, b, c := testItem(t, 1, 1, "a"), testItem(t, 2, 1, "b"), testItem(t, 3, 1, "c")

	for _, it := range []*bep44.Item{a, b} {
		if err := s.Put(it); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Get(a.Target()); err != nil || got != a {
		t.Fatalf("Get(a) = %v, %v", got, err)
	}
	if len(hooked) != 2 || string(hooked[0].Value) != "1:a" || hooked[0].Target != a.Target() || hooked[0].Seq != 1 {
		t.Errorf("hook saw %+v", hooked)
	}

	// Full: c evicts the least recently put, a; putting b again first
	// makes a the oldest even if it was put first anyway.
	clock.t = clock.t.Add(time.Minute)
	s.Put(b)
	s.Put(c)
	if _, err := s.Get(a.Target()); !errors.Is(err, bep44.ErrItemNotFound) {
		t.Errorf("a is still stored in a full store: %v", err)
	}
	if s.Len() != 2 {
		t.Errorf("Len() = %d, want 2", s.Len())
	}

	// Expiry: b and c were put a minute in; an hour after that they go.
	clock.t = clock.t.Add(time.Hour + time.Second)
	if _, err := s.Get(c.Target()); !errors.Is(err, bep44.ErrItemNotFound) {
		t.Errorf("c outlived its lifetime: %v", err)
	}
	if s.Len() != 0 {
		t.Errorf("Len() = %d after expiry, want 0", s.Len())
	}

	s.Put(a)
	s.Del(a.Target())
	if _, err := s.Get(a.Target()); !errors.Is(err, bep44.ErrItemNotFound) {
		t.Errorf("a is still stored after Del: %v", err)
	}
}

// TestStoreBehindWrapper checks what the library's wrapper adds in front
// of the store: a lower seq never replaces a higher one, an equal seq
// with the same value is accepted again, a bad signature never lands.
func TestStoreBehindWrapper(t *testing.T) {
	s := newItemStore(10, time.Hour, nil)
	w := bep44.NewWrapper(s, time.Hour)
	if err := w.Put(testItem(t, 1, 5, "new")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		it   *bep44.Item
		ok   bool
	}{
		{"same seq, same value", testItem(t, 1, 5, "new"), true},
		{"lower seq", testItem(t, 1, 4, "old"), false},
		{"same seq, other value", testItem(t, 1, 5, "other"), false},
		{"bad signature", func() *bep44.Item { it := testItem(t, 1, 9, "x"); it.Sig[0] ^= 1; return it }(), false},
		{"higher seq", testItem(t, 1, 6, "newer"), true},
	} {
		if err := w.Put(tc.it); (err == nil) != tc.ok {
			t.Errorf("%s: Put() = %v, want success %v", tc.name, err, tc.ok)
		}
	}
	got, err := w.Get(testItem(t, 1, 0, "").Target())
	if err != nil || got.Seq != 6 {
		t.Errorf("stored %+v, %v; want seq 6", got, err)
	}
}
