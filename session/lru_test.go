package session

import (
	"net/netip"
	"testing"
)

func TestLRUForgetsLeastRecentlyUsed(t *testing.T) {
	c := newLRU[string, int](3)
	c.put("a", 1)
	c.put("b", 2)
	c.put("c", 3)
	c.get("a")    // a is now the most recent; b the least
	c.put("d", 4) // evicts b
	c.put("c", 30)
	c.remove("nothing")
	tests := []struct {
		key  string
		want int
		ok   bool
	}{
		{"a", 1, true},
		{"b", 0, false},
		{"c", 30, true},
		{"d", 4, true},
	}
	for _, tc := range tests {
		if got, ok := c.get(tc.key); got != tc.want || ok != tc.ok {
			t.Errorf("get(%q) = %d, %v; want %d, %v", tc.key, got, ok, tc.want, tc.ok)
		}
	}
	c.remove("a")
	if _, ok := c.get("a"); ok || len(c.items) != c.order.Len() || len(c.items) != 2 {
		t.Fatalf("after remove: %d items, %d in order", len(c.items), c.order.Len())
	}
}

// TestAddrLimiterIsBounded: a flood from ever new sources does not grow
// the table past maxTrackedSources, and IPv6 sources count per /64.
func TestAddrLimiterIsBounded(t *testing.T) {
	l := newAddrLimiter(1, 1)
	for i := range 3 * maxTrackedSources {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if n := len(l.lims.items); n != maxTrackedSources {
		t.Fatalf("%d sources tracked; want %d", n, maxTrackedSources)
	}
	a, b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	if !l.allow(a) || l.allow(b) {
		t.Fatal("two addresses of one /64 were limited apart")
	}
}
