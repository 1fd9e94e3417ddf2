package transfer

import "math/bits"

// Bitmap is a set of chunk indexes in [0, Len).
type Bitmap struct {
	n    int
	bits []byte
}

// NewBitmap returns an empty set for n chunks.
func NewBitmap(n int) Bitmap { return Bitmap{n: n, bits: make([]byte, (n+7)/8)} }

// bitmapFrom wraps encoded bits; ok is false if bits is the wrong length
// or has bits set beyond n.
func bitmapFrom(n int, b []byte) (Bitmap, bool) {
	if len(b) != (n+7)/8 {
		return Bitmap{}, false
	}
	if n%8 != 0 && b[len(b)-1]>>(n%8) != 0 {
		return Bitmap{}, false
	}
	m := NewBitmap(n)
	copy(m.bits, b)
	return m, true
}

// Len is the number of chunks the set is for.
func (m Bitmap) Len() int { return m.n }

// Has reports whether chunk i is in the set.
func (m Bitmap) Has(i int) bool { return i >= 0 && i < m.n && m.bits[i/8]&(1<<(i%8)) != 0 }

// Set adds chunk i to the set.
func (m Bitmap) Set(i int) {
	if i >= 0 && i < m.n {
		m.bits[i/8] |= 1 << (i % 8)
	}
}

// Count is the number of chunks in the set.
func (m Bitmap) Count() int {
	c := 0
	for _, b := range m.bits {
		c += bits.OnesCount8(b)
	}
	return c
}
