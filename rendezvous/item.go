package rendezvous

import (
	"crypto/ed25519"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// BEP 44 limits: a storing node refuses a put beyond them.
const (
	// MaxEncodedValueSize bounds the bencoded "v" of an item.
	MaxEncodedValueSize = 1000
	// MaxSaltSize bounds an item's salt.
	MaxSaltSize = 64
)

// ErrBadItem is returned for an item that breaks BEP 44's rules or ours:
// a value or salt too big, a sequence number below 1, a value of the wrong
// size, or one that does not decrypt.
var ErrBadItem = errors.New("malformed BEP 44 item")

// ErrBadSignature is returned for an item whose signature does not verify
// under its key.
var ErrBadSignature = errors.New("BEP 44 item signature does not verify")

// Target is the 20-byte DHT key an item is stored under.
type Target [sha1.Size]byte

// String returns the target in hex, as DHT tools print it.
func (t Target) String() string { return hex.EncodeToString(t[:]) }

// Item is a BEP 44 mutable item, as put and got on the DHT.
type Item struct {
	Key   BlindedKey                  // "k": the key that signs, A' for records
	Salt  []byte                      // "salt": empty for records
	Seq   int64                       // "seq"
	Sig   [ed25519.SignatureSize]byte // "sig"
	Value []byte                      // "v": the content of a bencoded byte string
}

// MutableTarget returns BEP 44's target for a key and salt: SHA-1(k ‖ salt).
func MutableTarget(key BlindedKey, salt []byte) Target {
	h := sha1.New()
	h.Write(key[:])
	h.Write(salt)
	var t Target
	h.Sum(t[:0])
	return t
}

// Target returns the item's target.
func (it Item) Target() Target { return MutableTarget(it.Key, it.Salt) }

// EncodedValue returns "v" bencoded, as it travels and is stored: the
// length in decimal, a colon, the bytes.
func (it Item) EncodedValue() []byte { return bencodeString(nil, it.Value) }

// SignedBytes returns what BEP 44 signs: the bencoded salt (when there is
// one), seq and v entries of a dictionary, without the dictionary's own
// "d" and "e": "4:salt6:foobar3:seqi1e1:v12:Hello World!".
func (it Item) SignedBytes() []byte {
	var b []byte
	if len(it.Salt) > 0 {
		b = append(b, "4:salt"...)
		b = bencodeString(b, it.Salt)
	}
	b = append(b, "3:seqi"...)
	b = strconv.AppendInt(b, it.Seq, 10)
	b = append(b, "e1:v"...)
	return bencodeString(b, it.Value)
}

// Check verifies the item as a storing node does: sizes within BEP 44's
// limits and the signature valid under Key.
func (it Item) Check() error {
	if n := len(it.EncodedValue()); n > MaxEncodedValueSize {
		return fmt.Errorf("%w: bencoded value is %d bytes, at most %d", ErrBadItem, n, MaxEncodedValueSize)
	}
	if len(it.Salt) > MaxSaltSize {
		return fmt.Errorf("%w: salt is %d bytes, at most %d", ErrBadItem, len(it.Salt), MaxSaltSize)
	}
	if !ed25519.Verify(it.Key[:], it.SignedBytes(), it.Sig[:]) {
		return ErrBadSignature
	}
	return nil
}

// bencodeString appends s as a bencoded byte string.
func bencodeString(b, s []byte) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}
