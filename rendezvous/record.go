package rendezvous

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Sizes of the record's plaintext. Format v2 adds a flags byte after the
// time; v1 has none:
//
//	version  1 byte   formatV1 or formatV2
//	time     8 bytes  Unix seconds, big-endian
//	flags    1 byte   v2 only: Flags, never 0
//	count    1 byte   number of candidates
//	count ×  kind (1 byte), family (1 byte: 4 or 6), address (4 or 16
//	         bytes), port (2 bytes, big-endian)
//	padding  zero bytes up to plainSize
//
// A record with no flag set is written as v1, which agents that know
// only v1 read: an easy node stays found by every agent, and only a node
// with something v1 cannot say (FlagHardNAT) needs a reader that knows
// v2. A reader takes both.
const (
	formatV1     = 1
	formatV2     = 2
	headerSizeV1 = 1 + 8 + 1
	headerSizeV2 = headerSizeV1 + 1
	candidate4   = 1 + 1 + 4 + 2
	candidate6   = 1 + 1 + 16 + 2
	// MaxCandidates is how many candidates a record holds: a public IPv4
	// address and its port mapping, up to four global IPv6 addresses (a
	// host with temporary addresses has two or three) and their PCP
	// mappings, and a relay of each family make 12. Twelve IPv6
	// candidates fill 251 of the 256 bytes (v2).
	MaxCandidates = 12
	// plainSize is the fixed size every plaintext is padded to, so the
	// ciphertext's length tells nobody how many candidates, or of which
	// family, a node has. It is the largest record rounded up to a power
	// of two.
	plainSize = 256
)

// ErrBadRecord is returned when a record's plaintext does not decode: an
// unknown version, kind or family, a count or size out of bounds, an
// address a record may not hold, or padding that is not zero.
var ErrBadRecord = errors.New("malformed rendezvous record")

// ErrBadCandidate is returned by Seal for a candidate a record may not hold:
// an unknown kind, no port, a duplicate, or an address that is not a
// global unicast one (see Candidate).
var ErrBadCandidate = errors.New("candidate not allowed in a rendezvous record")

// ErrTooManyCandidates is returned by Seal for a record with more than
// MaxCandidates candidates; the caller keeps the best ones.
var ErrTooManyCandidates = errors.New("too many candidates for a rendezvous record")

// Kind says where a candidate address comes from.
type Kind uint8

// Kinds of candidates. LAN addresses are not among them: a LAN address
// means something only on that LAN, where signed multicast announcements
// find the peer faster; anywhere else it points at whatever host has that
// private address on the reader's network, and it would tell every peer
// the inside of the publisher's network for nothing.
const (
	// Public is the node's own address as the internet sees it (STUN's
	// mapped address, or a global IPv6 address of the host).
	Public Kind = 1
	// PortMapped is an address and port the node's router forwards to it
	// (PCP, NAT-PMP or UPnP).
	PortMapped Kind = 2
	// Relay is the node's allocation on a TURN server.
	Relay Kind = 3
)

// String returns the kind's name as the CLI prints it.
func (k Kind) String() string {
	switch k {
	case Public:
		return "public"
	case PortMapped:
		return "port-mapped"
	case Relay:
		return "relay"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Flags say what a record's candidates alone do not. Bits this build does
// not name are a newer build's: kept, so that a record reads back as it
// was written, and otherwise ignored.
type Flags uint8

// FlagHardNAT says the node's NAT maps a new public port per destination
// (endpoint-dependent mapping), so its Public candidate is not where a
// peer reaches it: a peer behind an easy NAT that filters tries birthday
// probing (session/birthday.go). A record without it says nothing either
// way: one from an agent that knows only v1 cannot.
const FlagHardNAT Flags = 1 << 0

// Candidate is one address a peer may be reached at. Its address must be
// global unicast: not private (RFC 1918, fc00::/7), shared (100.64.0.0/10),
// loopback, link-local, multicast or unspecified, with no zone; an
// IPv4-mapped IPv6 address is stored as the IPv4 address it maps. The port
// is not 0.
type Candidate struct {
	Kind Kind
	Addr netip.AddrPort
}

// String returns "kind address:port".
func (c Candidate) String() string { return c.Kind.String() + " " + c.Addr.String() }

// Record is what a node publishes about itself: where it can be reached,
// when it said so, and what a peer needs to know to get through its NAT
// (Flags). Nothing else: no name, no LAN addresses.
type Record struct {
	// Seq orders the node's records: a reader keeps the highest it has
	// opened and refuses any record whose Seq is not higher. It is the
	// BEP 44 "seq", visible to DHT nodes. NextSeq makes one.
	Seq int64
	// Time is when the record was made; it is stored to the second, and a
	// reader refuses a record older than MaxRecordAge or more than
	// MaxClockSkew in its future.
	Time time.Time
	// Candidates in the publisher's order of preference, at most
	// MaxCandidates.
	Candidates []Candidate
	// Flags about the node (FlagHardNAT); zero for none, and then the
	// record is written as v1.
	Flags Flags
}

// sharedAddressSpace is RFC 6598's carrier-grade NAT range: reachable only
// inside a carrier's network, never a useful address to publish.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// UsableAddr reports whether a record may hold a (see Candidate).
func UsableAddr(a netip.Addr) bool {
	return a.IsGlobalUnicast() && !a.IsPrivate() && a.Zone() == "" && !sharedAddressSpace.Contains(a)
}

// encodeRecord returns the padded plaintext of rec: deterministic, the same
// record always giving the same bytes.
func encodeRecord(rec Record) ([]byte, error) {
	if len(rec.Candidates) > MaxCandidates {
		return nil, fmt.Errorf("%w: %d, at most %d", ErrTooManyCandidates, len(rec.Candidates), MaxCandidates)
	}
	secs := rec.Time.Unix()
	if secs <= 0 {
		return nil, fmt.Errorf("rendezvous record: time %v is before 1970", rec.Time)
	}
	b := make([]byte, 0, plainSize)
	if rec.Flags == 0 {
		b = append(b, formatV1)
		b = binary.BigEndian.AppendUint64(b, uint64(secs))
	} else {
		b = append(b, formatV2)
		b = binary.BigEndian.AppendUint64(b, uint64(secs))
		b = append(b, byte(rec.Flags))
	}
	b = append(b, byte(len(rec.Candidates)))
	seen := make(map[Candidate]bool, len(rec.Candidates))
	for _, c := range rec.Candidates {
		c.Addr = netip.AddrPortFrom(c.Addr.Addr().Unmap(), c.Addr.Port())
		switch {
		case c.Kind < Public || c.Kind > Relay:
			return nil, fmt.Errorf("%w: %s", ErrBadCandidate, c)
		case c.Addr.Port() == 0 || !UsableAddr(c.Addr.Addr()):
			return nil, fmt.Errorf("%w: %s", ErrBadCandidate, c)
		case seen[c]:
			return nil, fmt.Errorf("%w: %s is listed twice", ErrBadCandidate, c)
		}
		seen[c] = true
		b = append(b, byte(c.Kind))
		if c.Addr.Addr().Is4() {
			b = append(b, 4)
		} else {
			b = append(b, 6)
		}
		b = append(b, c.Addr.Addr().AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, c.Addr.Port())
	}
	return append(b, make([]byte, plainSize-len(b))...), nil
}

// decodeRecord parses a plaintext that encodeRecord made, and refuses
// anything encodeRecord cannot make. The record's Seq is left zero: it
// travels outside the plaintext.
func decodeRecord(b []byte) (Record, error) {
	var rec Record
	if len(b) != plainSize {
		return rec, fmt.Errorf("%w: %d bytes, want %d", ErrBadRecord, len(b), plainSize)
	}
	headerSize := headerSizeV1
	switch b[0] {
	case formatV1:
	case formatV2:
		headerSize = headerSizeV2
		rec.Flags = Flags(b[9])
		if rec.Flags == 0 {
			// encodeRecord writes such a record as v1.
			return Record{}, fmt.Errorf("%w: version 2 with no flag set", ErrBadRecord)
		}
	default:
		return rec, fmt.Errorf("%w: version %d", ErrBadRecord, b[0])
	}
	secs := int64(binary.BigEndian.Uint64(b[1:9]))
	if secs <= 0 {
		return Record{}, fmt.Errorf("%w: time %d", ErrBadRecord, secs)
	}
	rec.Time = time.Unix(secs, 0).UTC()
	n := int(b[headerSize-1])
	if n > MaxCandidates {
		return Record{}, fmt.Errorf("%w: %d candidates", ErrBadRecord, n)
	}
	rest := b[headerSize:]
	seen := make(map[Candidate]bool, n)
	for i := range n {
		c, size, err := decodeCandidate(rest)
		if err != nil {
			return Record{}, fmt.Errorf("candidate %d: %w", i, err)
		}
		if seen[c] {
			return Record{}, fmt.Errorf("%w: candidate %s is listed twice", ErrBadRecord, c)
		}
		seen[c] = true
		rec.Candidates = append(rec.Candidates, c)
		rest = rest[size:]
	}
	for _, x := range rest {
		if x != 0 {
			return Record{}, fmt.Errorf("%w: padding is not zero", ErrBadRecord)
		}
	}
	return rec, nil
}

// decodeCandidate parses the candidate at the start of b and returns its
// encoded size.
func decodeCandidate(b []byte) (Candidate, int, error) {
	if len(b) < 2 {
		return Candidate{}, 0, fmt.Errorf("%w: truncated", ErrBadRecord)
	}
	kind := Kind(b[0])
	if kind < Public || kind > Relay {
		return Candidate{}, 0, fmt.Errorf("%w: kind %d", ErrBadRecord, b[0])
	}
	var size int
	switch b[1] {
	case 4:
		size = candidate4
	case 6:
		size = candidate6
	default:
		return Candidate{}, 0, fmt.Errorf("%w: family %d", ErrBadRecord, b[1])
	}
	if len(b) < size {
		return Candidate{}, 0, fmt.Errorf("%w: truncated", ErrBadRecord)
	}
	addr, _ := netip.AddrFromSlice(b[2 : size-2]) // 4 or 16 bytes: always ok
	port := binary.BigEndian.Uint16(b[size-2 : size])
	if addr.Is4In6() || port == 0 || !UsableAddr(addr) {
		return Candidate{}, 0, fmt.Errorf("%w: address %s", ErrBadRecord, netip.AddrPortFrom(addr, port))
	}
	return Candidate{Kind: kind, Addr: netip.AddrPortFrom(addr, port)}, size, nil
}
