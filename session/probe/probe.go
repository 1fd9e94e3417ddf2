// Package probe encodes and decodes punch probes: the small signed
// datagrams with which two nodes open a path through their NATs and
// check that it works.
package probe

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Punch probes are small signed datagrams sent on the node's shared socket.
// Their first byte is below 0x40, so quic-go hands them to
// ReadNonQUICPacket, and it is not 0x00 or 0x01, so they never look like STUN.
//
//	offset size
//	0      4    magic "\x1fPD\x02" (marker byte, "PD", version 2)
//	4      1    type: 1 probe, 2 ack
//	5      32   sender key (its node ID)
//	37     32   receiver key (the node ID the sender is looking for)
//	69     8    nonce; an ack echoes the probe's
//	77     8    time the sender made it: Unix milliseconds, signed big-endian
//	85     1    name length n (0..MaxName)
//	86     n    sender's display name, UTF-8
//	86+n   64   Ed25519 signature by the sender over bytes [0, 86+n)
//
// The signature stops anyone from forging probes in a known peer's name to
// steer its path or to flood the user with fake peer requests. The time
// and the nonce let the receiver refuse a recorded probe played back later
// (the receiver checks the time against its clock and remembers nonces).
//
// Version 1 had no time field (the name length sat at offset 77); its
// probes fail Parse with a version error.
const (
	probeHeaderLen = 86
	probeSigLen    = ed25519.SignatureSize
	// MaxName bounds the display name carried in a probe; it matches
	// the connection string's limit.
	MaxName = 64
	// MaxLen is the largest valid probe, far below any path MTU.
	MaxLen = probeHeaderLen + MaxName + probeSigLen
	keyLen = ed25519.PublicKeySize
	// Version is the probe format this build writes and reads.
	Version = 2
)

// probeMarker starts every probe of every version; the version byte follows.
var probeMarker = [3]byte{0x1f, 'P', 'D'}

// Offsets of the fields, as in the table above.
const (
	offVersion = 3
	offType    = 4
	offFrom    = 5
	offTo      = 37
	offNonce   = 69
	offTime    = 77
	offNameLen = 85
)

// Type says whether a probe asks or answers.
type Type uint8

// Probe types. Values are on the wire.
const (
	Request Type = 1 // "are you there?"
	Ack     Type = 2 // "yes, and this path works"
)

func (t Type) String() string {
	switch t {
	case Request:
		return "probe"
	case Ack:
		return "ack"
	}
	return fmt.Sprintf("probe-type-%d", uint8(t))
}

// ErrBad is returned, wrapped with the reason, for every datagram that
// is not a well-formed, correctly signed probe.
var ErrBad = errors.New("bad punch probe")

// Probe is one decoded punch datagram.
type Probe struct {
	Type  Type
	From  [keyLen]byte // sender's public key
	To    [keyLen]byte // the key the sender is looking for
	Nonce uint64
	// Time is when the sender made the probe, to the millisecond; Marshal
	// refuses the zero time.
	Time time.Time
	Name string // sender's display name; may be empty
}

// Is reports whether b starts like a probe of any version. It is
// cheap and does not validate; Parse does.
func Is(b []byte) bool {
	return len(b) > offVersion && [3]byte(b[:offVersion]) == probeMarker
}

// ClaimedSender returns the sender key that b claims, without checking
// the signature: cheap enough to decide whether b is worth checking.
func ClaimedSender(b []byte) (from [keyLen]byte, ok bool) {
	if !Is(b) || len(b) < offFrom+keyLen {
		return from, false
	}
	return [keyLen]byte(b[offFrom : offFrom+keyLen]), true
}

// Marshal encodes and signs p with key, which must be the key of p.From.
func (p Probe) Marshal(key ed25519.PrivateKey) ([]byte, error) {
	if len(p.Name) > MaxName {
		return nil, fmt.Errorf("marshal probe: name is %d bytes, at most %d", len(p.Name), MaxName)
	}
	if p.Time.IsZero() {
		return nil, fmt.Errorf("marshal probe: no time")
	}
	b := make([]byte, probeHeaderLen+len(p.Name), MaxLen)
	copy(b, probeMarker[:])
	b[offVersion] = Version
	b[offType] = byte(p.Type)
	copy(b[offFrom:], p.From[:])
	copy(b[offTo:], p.To[:])
	binary.BigEndian.PutUint64(b[offNonce:], p.Nonce)
	binary.BigEndian.PutUint64(b[offTime:], uint64(p.Time.UnixMilli()))
	b[offNameLen] = byte(len(p.Name))
	copy(b[probeHeaderLen:], p.Name)
	return append(b, ed25519.Sign(key, b)...), nil
}

// Parse decodes b and checks its signature against the sender's key.
// It returns an error for every truncated, oversized, malformed or
// wrongly signed datagram and never panics.
func Parse(b []byte) (Probe, error) {
	var p Probe
	if len(b) > MaxLen {
		return p, fmt.Errorf("%w: %d bytes, at most %d", ErrBad, len(b), MaxLen)
	}
	if !Is(b) {
		return p, fmt.Errorf("%w: wrong magic", ErrBad)
	}
	if b[offVersion] != Version {
		return p, fmt.Errorf("%w: version %d, this build speaks %d", ErrBad, b[offVersion], Version)
	}
	if len(b) < probeHeaderLen+probeSigLen {
		return p, fmt.Errorf("%w: %d bytes is truncated", ErrBad, len(b))
	}
	p.Type = Type(b[offType])
	if p.Type != Request && p.Type != Ack {
		return Probe{}, fmt.Errorf("%w: unknown type %d", ErrBad, b[offType])
	}
	copy(p.From[:], b[offFrom:])
	copy(p.To[:], b[offTo:])
	p.Nonce = binary.BigEndian.Uint64(b[offNonce:])
	p.Time = time.UnixMilli(int64(binary.BigEndian.Uint64(b[offTime:])))
	n := int(b[offNameLen])
	if n > MaxName {
		return Probe{}, fmt.Errorf("%w: name length %d", ErrBad, n)
	}
	if len(b) != probeHeaderLen+n+probeSigLen {
		return Probe{}, fmt.Errorf("%w: %d bytes, want %d for a %d-byte name", ErrBad, len(b), probeHeaderLen+n+probeSigLen, n)
	}
	signed := b[:probeHeaderLen+n]
	if !ed25519.Verify(ed25519.PublicKey(p.From[:]), signed, b[probeHeaderLen+n:]) {
		return Probe{}, fmt.Errorf("%w: signature does not match the sender key", ErrBad)
	}
	name := string(b[probeHeaderLen : probeHeaderLen+n])
	if !utf8.ValidString(name) {
		return Probe{}, fmt.Errorf("%w: name is not UTF-8", ErrBad)
	}
	p.Name = name
	return p, nil
}
