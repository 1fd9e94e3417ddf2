package transfer

import (
	"crypto/sha256"
	"hash"
)

// Hashes of chunks and of whole files. Every version so far hashes
// with SHA-256: with the SHA extensions of current x86 and ARM cores it
// runs at 1–2 GB/s, far beyond any link, and it needs no module of its
// own (make bench weighs it against BLAKE3). A version that changes the
// hash says so here, and a transfer keeps the version it started with.

// newHash returns the hash of chunks and roots in version v.
func newHash(uint8) hash.Hash { return sha256.New() }

// sum hashes one chunk's data in version v.
func sum(_ uint8, data []byte) Hash { return sha256.Sum256(data) }

// Root is the whole-file hash in version Version: the hash of the chunk
// hashes, in order.
func Root(hashes []Hash) Hash { return root(Version, hashes) }

// root is the whole-file hash in version v.
func root(v uint8, hashes []Hash) Hash {
	h := newHash(v)
	for _, c := range hashes {
		h.Write(c[:])
	}
	return Hash(h.Sum(nil))
}
