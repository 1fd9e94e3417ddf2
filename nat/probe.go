package nat

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Punch probes are small signed datagrams sent on the node's shared socket.
// Their first byte is below 0x40, so quic-go hands them to
// ReadNonQUICPacket, and it is not 0x00 or 0x01, so they never look like STUN.
//
//	offset size
//	0      4    magic "\x1fPD\x01" (marker byte, "PD", version 1)
//	4      1    type: 1 probe, 2 ack
//	5      32   sender key (its node ID)
//	37     32   receiver key (the node ID the sender is looking for)
//	69     8    nonce; an ack echoes the probe's
//	77     1    name length n (0..MaxProbeName)
//	78     n    sender's display name, UTF-8
//	78+n   64   Ed25519 signature by the sender over bytes [0, 78+n)
//
// The signature stops anyone from forging probes in a known peer's name to
// steer its path or to flood the user with fake peer requests.
const (
	probeHeaderLen = 78
	probeSigLen    = ed25519.SignatureSize
	// MaxProbeName bounds the display name carried in a probe; it matches
	// the connection string's limit.
	MaxProbeName = 64
	// MaxProbeLen is the largest valid probe, far below any path MTU.
	MaxProbeLen = probeHeaderLen + MaxProbeName + probeSigLen
	keyLen      = ed25519.PublicKeySize
)

var probeMagic = [4]byte{0x1f, 'P', 'D', 0x01}

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
	Name  string // sender's display name; may be empty
}

// IsProbe reports whether b starts like a probe. It is cheap and does not
// validate; ParseProbe does.
func IsProbe(b []byte) bool {
	return len(b) >= len(probeMagic) && [4]byte(b[:4]) == probeMagic
}

// Marshal encodes and signs p with key, which must be the key of p.From.
func (p Probe) Marshal(key ed25519.PrivateKey) ([]byte, error) {
	if len(p.Name) > MaxProbeName {
		return nil, fmt.Errorf("marshal probe: name is %d bytes, at most %d", len(p.Name), MaxProbeName)
	}
	b := make([]byte, probeHeaderLen+len(p.Name), MaxProbeLen)
	copy(b, probeMagic[:])
	b[4] = byte(p.Type)
	copy(b[5:], p.From[:])
	copy(b[37:], p.To[:])
	binary.BigEndian.PutUint64(b[69:], p.Nonce)
	b[77] = byte(len(p.Name))
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
	if len(b) < probeHeaderLen+probeSigLen {
		return p, fmt.Errorf("%w: %d bytes is truncated", ErrBadProbe, len(b))
	}
	if !IsProbe(b) {
		return p, fmt.Errorf("%w: wrong magic", ErrBadProbe)
	}
	p.Type = ProbeType(b[4])
	if p.Type != ProbeRequest && p.Type != ProbeAck {
		return Probe{}, fmt.Errorf("%w: unknown type %d", ErrBadProbe, b[4])
	}
	copy(p.From[:], b[5:])
	copy(p.To[:], b[37:])
	p.Nonce = binary.BigEndian.Uint64(b[69:])
	n := int(b[77])
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
