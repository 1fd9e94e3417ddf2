package nat

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
//	85     1    name length n (0..MaxProbeName)
//	86     n    sender's display name, UTF-8
//	86+n   64   Ed25519 signature by the sender over bytes [0, 86+n)
//
// The signature stops anyone from forging probes in a known peer's name to
// steer its path or to flood the user with fake peer requests. The time
// and the nonce let the receiver refuse a recorded probe played back later
// (the receiver checks the time against its clock and remembers nonces).
//
// Version 1 had no time field (the name length sat at offset 77); its
// probes fail ParseProbe with a version error.
const (
	probeHeaderLen = 86
	probeSigLen    = ed25519.SignatureSize
	// MaxProbeName bounds the display name carried in a probe; it matches
	// the connection string's limit.
	MaxProbeName = 64
	// MaxProbeLen is the largest valid probe, far below any path MTU.
	MaxProbeLen = probeHeaderLen + MaxProbeName + probeSigLen
	keyLen      = ed25519.PublicKeySize
	// ProbeVersion is the probe format this build writes and reads.
	ProbeVersion = 2
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

// ProbeType says whether a probe asks or answers.
type ProbeType uint8

// Probe types. Values are on the wire.
const (
	ProbeRequest ProbeType = 1 // "are you there?"
	ProbeAck     ProbeType = 2 // "yes, and this path works"
)

func (t ProbeType) String() string {
	switch t {
	case ProbeRequest:
		return "probe"
	case ProbeAck:
		return "ack"
	}
	return fmt.Sprintf("probe-type-%d", uint8(t))
}

// ErrBadProbe is returned, wrapped with the reason, for every datagram that
// is not a well-formed, correctly signed probe.
var ErrBadProbe = errors.New("bad punch probe")

// Probe is one decoded punch datagram.
type Probe struct {
	Type  ProbeType
	From  [keyLen]byte // sender's public key
	To    [keyLen]byte // the key the sender is looking for
	Nonce uint64
	// Time is when the sender made the probe, to the millisecond; Marshal
	// refuses the zero time.
	Time time.Time
	Name string // sender's display name; may be empty
}

// IsProbe reports whether b starts like a probe of any version. It is
// cheap and does not validate; ParseProbe does.
func IsProbe(b []byte) bool {
	return len(b) > offVersion && [3]byte(b[:offVersion]) == probeMarker
}

// Marshal encodes and signs p with key, which must be the key of p.From.
func (p Probe) Marshal(key ed25519.PrivateKey) ([]byte, error) {
	if len(p.Name) > MaxProbeName {
		return nil, fmt.Errorf("marshal probe: name is %d bytes, at most %d", len(p.Name), MaxProbeName)
	}
	if p.Time.IsZero() {
		return nil, fmt.Errorf("marshal probe: no time")
	}
	b := make([]byte, probeHeaderLen+len(p.Name), MaxProbeLen)
	copy(b, probeMarker[:])
	b[offVersion] = ProbeVersion
	b[offType] = byte(p.Type)
	copy(b[offFrom:], p.From[:])
	copy(b[offTo:], p.To[:])
	binary.BigEndian.PutUint64(b[offNonce:], p.Nonce)
	binary.BigEndian.PutUint64(b[offTime:], uint64(p.Time.UnixMilli()))
	b[offNameLen] = byte(len(p.Name))
	copy(b[probeHeaderLen:], p.Name)
	return append(b, ed25519.Sign(key, b)...), nil
}

// ParseProbe decodes b and checks its signature against the sender's key.
// It returns an error for every truncated, oversized, malformed or
// wrongly signed datagram and never panics.
func ParseProbe(b []byte) (Probe, error) {
	var p Probe
	if len(b) > MaxProbeLen {
		return p, fmt.Errorf("%w: %d bytes, at most %d", ErrBadProbe, len(b), MaxProbeLen)
	}
	if !IsProbe(b) {
		return p, fmt.Errorf("%w: wrong magic", ErrBadProbe)
	}
	if b[offVersion] != ProbeVersion {
		return p, fmt.Errorf("%w: version %d, this build speaks %d", ErrBadProbe, b[offVersion], ProbeVersion)
	}
	if len(b) < probeHeaderLen+probeSigLen {
		return p, fmt.Errorf("%w: %d bytes is truncated", ErrBadProbe, len(b))
	}
	p.Type = ProbeType(b[offType])
	if p.Type != ProbeRequest && p.Type != ProbeAck {
		return Probe{}, fmt.Errorf("%w: unknown type %d", ErrBadProbe, b[offType])
	}
	copy(p.From[:], b[offFrom:])
	copy(p.To[:], b[offTo:])
	p.Nonce = binary.BigEndian.Uint64(b[offNonce:])
	p.Time = time.UnixMilli(int64(binary.BigEndian.Uint64(b[offTime:])))
	n := int(b[offNameLen])
	if n > MaxProbeName {
		return Probe{}, fmt.Errorf("%w: name length %d", ErrBadProbe, n)
	}
	if len(b) != probeHeaderLen+n+probeSigLen {
		return Probe{}, fmt.Errorf("%w: %d bytes, want %d for a %d-byte name", ErrBadProbe, len(b), probeHeaderLen+n+probeSigLen, n)
	}
	signed := b[:probeHeaderLen+n]
	if !ed25519.Verify(ed25519.PublicKey(p.From[:]), signed, b[probeHeaderLen+n:]) {
		return Probe{}, fmt.Errorf("%w: signature does not match the sender key", ErrBadProbe)
	}
	name := string(b[probeHeaderLen : probeHeaderLen+n])
	if !utf8.ValidString(name) {
		return Probe{}, fmt.Errorf("%w: name is not UTF-8", ErrBadProbe)
	}
	p.Name = name
	return p, nil
}
