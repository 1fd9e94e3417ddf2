package session

import (
	"crypto/ed25519"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
)

// NodeIDLen is the length of a node ID in bytes: an Ed25519 public key.
const NodeIDLen = ed25519.PublicKeySize

// ShortIDLen is how many characters of a node ID are shown where space is
// tight; 8 base32 characters are 40 bits, plenty to tell a person's peers apart.
const ShortIDLen = 8

// nodeIDEncoding prints node IDs as upper-case base32 without padding: 52
// characters that survive being read aloud, typed, or pasted into a URL.
var nodeIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// ErrBadNodeID is returned when a string is not a node ID.
var ErrBadNodeID = errors.New("not a node ID")

// NodeID names a node. It is its Ed25519 public key, so anyone holding the ID
// can check a peer's key against it without asking anyone. It is comparable
// and works as a map key.
type NodeID [NodeIDLen]byte

// NodeIDFromKey returns the node ID of a public key.
func NodeIDFromKey(pub ed25519.PublicKey) (NodeID, error) {
	var id NodeID
	if len(pub) != NodeIDLen {
		return id, fmt.Errorf("%w: public key is %d bytes, want %d", ErrBadNodeID, len(pub), NodeIDLen)
	}
	copy(id[:], pub)
	return id, nil
}

// String returns the strict printed form: 52 upper-case base32 characters.
func (id NodeID) String() string { return nodeIDEncoding.EncodeToString(id[:]) }

// Short returns the first ShortIDLen characters of the printed form.
func (id NodeID) Short() string { return id.String()[:ShortIDLen] }

// IsZero reports whether id is the zero value.
func (id NodeID) IsZero() bool { return id == NodeID{} }

// Less orders node IDs; the smaller ID dials when two nodes meet.
func (id NodeID) Less(other NodeID) bool {
	for i := range id {
		if id[i] != other[i] {
			return id[i] < other[i]
		}
	}
	return false
}

// MarshalText implements encoding.TextMarshaler.
func (id NodeID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseNodeID.
func (id *NodeID) UnmarshalText(b []byte) error {
	parsed, err := ParseNodeID(string(b))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}

// ParseNodeID parses a node ID leniently: case, spaces and dashes are
// ignored, so an ID read from a chat message or typed in groups still works.
func ParseNodeID(s string) (NodeID, error) {
	var id NodeID
	clean := NormalizeIDText(s)
	if len(clean) != nodeIDEncoding.EncodedLen(NodeIDLen) {
		return id, fmt.Errorf("%w: %q has %d characters, want %d", ErrBadNodeID, s, len(clean), nodeIDEncoding.EncodedLen(NodeIDLen))
	}
	n, err := nodeIDEncoding.Decode(id[:], []byte(clean))
	if err != nil || n != NodeIDLen {
		return NodeID{}, fmt.Errorf("%w: %q is not base32", ErrBadNodeID, s)
	}
	return id, nil
}

// NormalizeIDText removes spaces and dashes and upper-cases s, the way
// ParseNodeID reads it; prefix matching of IDs uses it too.
func NormalizeIDText(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '\t':
			return -1
		}
		return r
	}, strings.ToUpper(s))
}
