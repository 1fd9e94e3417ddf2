package simnet

import (
	"fmt"
	"net/netip"
	"time"
)

// DefaultMappingTimeout is how long a NAT mapping lives without outbound
// traffic when NAT.Timeout is zero: Linux conntrack's timeout for a UDP
// flow (nf_conntrack_udp_timeout), which is what the kernel lab's routers
// do to a mapping that only ever saw traffic one way.
const DefaultMappingTimeout = 30 * time.Second

// Behavior is a NAT's mapping or filtering behaviour in RFC 4787 terms.
type Behavior int

// Behaviours (RFC 4787 §4.1 mapping, §5 filtering).
const (
	// EndpointIndependent: one public port per internal endpoint whatever
	// the destination; anyone may send to it.
	EndpointIndependent Behavior = iota
	// AddressDependent: a public port per destination IP; only IPs the
	// internal endpoint sent to may send to it.
	AddressDependent
	// AddressAndPortDependent: a public port per destination IP and port;
	// only the exact addresses it sent to may send to it.
	AddressAndPortDependent
)

func (b Behavior) String() string {
	switch b {
	case EndpointIndependent:
		return "endpoint-independent"
	case AddressDependent:
		return "address-dependent"
	case AddressAndPortDependent:
		return "address-and-port-dependent"
	}
	return fmt.Sprintf("behavior-%d", int(b))
}

// NAT is how a site's router translates and filters. The zero value is a
// full-cone NAT that keeps internal ports, does not hairpin, and forgets a
// mapping after DefaultMappingTimeout.
type NAT struct {
	Mapping   Behavior
	Filtering Behavior
	// Hairpin lets a host reach another host of its own site through the
	// site's public address (RFC 4787 REQ-9); without it such packets are
	// dropped, as most home routers do.
	Hairpin bool
	// RandomPorts picks each new mapping's public port at random (Linux
	// MASQUERADE --random-fully); otherwise the internal port is kept when
	// it is free (plain MASQUERADE).
	RandomPorts bool
	// Timeout is how long a mapping lives after its last outbound packet;
	// zero means DefaultMappingTimeout.
	Timeout time.Duration
}

// Kind names the common NAT types, as the kernel lab builds them.
type Kind string

// NAT kinds.
const (
	None              Kind = "none"               // hosts on the internet, no NAT, no filter
	FullCone          Kind = "full-cone"          // endpoint-independent mapping and filtering
	AddressRestricted Kind = "address-restricted" // endpoint-independent mapping, address-dependent filtering
	PortRestricted    Kind = "port-restricted"    // endpoint-independent mapping, address-and-port-dependent filtering
	Symmetric         Kind = "symmetric"          // a random port per destination, address-and-port-dependent filtering
)

// Kinds lists every kind, from the easiest to the hardest to punch.
var Kinds = []Kind{None, FullCone, AddressRestricted, PortRestricted, Symmetric}

// NAT returns the router behaviour of kind k; nil for None (and for an
// unknown kind).
func (k Kind) NAT() *NAT {
	switch k {
	case FullCone:
		return &NAT{}
	case AddressRestricted:
		return &NAT{Filtering: AddressDependent}
	case PortRestricted:
		return &NAT{Filtering: AddressAndPortDependent}
	case Symmetric:
		return &NAT{Mapping: AddressAndPortDependent, Filtering: AddressAndPortDependent, RandomPorts: true}
	}
	return nil
}

// mappingKey is what a mapping is chosen by: the internal endpoint and,
// for dependent mapping, the part of the destination that matters.
type mappingKey struct {
	internal netip.AddrPort
	remote   netip.AddrPort // zero (EI), IP with port 0 (AD), or IP and port (APD)
}

// mapping is one NAT binding of an internal endpoint to a public port.
type mapping struct {
	key     mappingKey
	port    uint16
	lastOut time.Time
	// sentTo are the destinations the internal endpoint sent to through
	// this mapping: what dependent filtering lets in.
	sentTo map[netip.AddrPort]struct{}
}

// table is a router's NAT state. Its owner's lock guards it.
type table struct {
	cfg    NAT
	public netip.Addr
	byKey  map[mappingKey]*mapping
	byPort map[uint16]*mapping
}

func newTable(cfg NAT, public netip.Addr) *table {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultMappingTimeout
	}
	return &table{cfg: cfg, public: public, byKey: map[mappingKey]*mapping{}, byPort: map[uint16]*mapping{}}
}

// outbound translates a packet from internal to dst: it finds or makes
// the mapping, refreshes it, notes dst for filtering, and returns the
// public source address.
func (t *table) outbound(internal, dst netip.AddrPort, now time.Time, randPort func() uint16) netip.AddrPort {
	key := mappingKey{internal: internal}
	switch t.cfg.Mapping {
	case AddressDependent:
		key.remote = netip.AddrPortFrom(dst.Addr(), 0)
	case AddressAndPortDependent:
		key.remote = dst
	}
	m := t.byKey[key]
	if m != nil && t.expired(m, now) {
		t.remove(m)
		m = nil
	}
	if m == nil {
		m = &mapping{key: key, port: t.freePort(internal.Port(), now, randPort), sentTo: map[netip.AddrPort]struct{}{}}
		t.byKey[key] = m
		t.byPort[m.port] = m
	}
	m.lastOut = now
	m.sentTo[dst] = struct{}{}
	return netip.AddrPortFrom(t.public, m.port)
}

// inbound finds where a packet from src to the public port goes, if a
// live mapping holds the port and its filtering lets src in.
func (t *table) inbound(src netip.AddrPort, port uint16, now time.Time) (netip.AddrPort, bool) {
	m := t.byPort[port]
	if m == nil || t.expired(m, now) {
		return netip.AddrPort{}, false
	}
	switch t.cfg.Filtering {
	case AddressDependent:
		for a := range m.sentTo {
			if a.Addr() == src.Addr() {
				return m.key.internal, true
			}
		}
		return netip.AddrPort{}, false
	case AddressAndPortDependent:
		if _, ok := m.sentTo[src]; !ok {
			return netip.AddrPort{}, false
		}
	}
	return m.key.internal, true
}

func (t *table) expired(m *mapping, now time.Time) bool {
	return now.Sub(m.lastOut) > t.cfg.Timeout
}

func (t *table) remove(m *mapping) {
	delete(t.byKey, m.key)
	delete(t.byPort, m.port)
}

// flush forgets every mapping, as a router reboot does.
func (t *table) flush() {
	clear(t.byKey)
	clear(t.byPort)
}

// Ephemeral ports a router hands out when it cannot keep the internal one.
const (
	minPublicPort = 1024
	numPublicPort = 65536 - minPublicPort
)

// freePort picks the public port of a new mapping: the internal port if
// it is free and ports are kept, else a random (or the next) free one.
// A port whose mapping expired counts as free.
func (t *table) freePort(want uint16, now time.Time, randPort func() uint16) uint16 {
	free := func(p uint16) bool {
		m := t.byPort[p]
		if m != nil && t.expired(m, now) {
			t.remove(m)
			m = nil
		}
		return p >= minPublicPort && m == nil
	}
	if t.cfg.RandomPorts {
		want = randPort()
	} else if free(want) {
		return want
	}
	for i := range numPublicPort {
		p := uint16(minPublicPort + (int(want)-minPublicPort+i+numPublicPort)%numPublicPort)
		if free(p) {
			return p
		}
	}
	return 0 // every port is taken: the packet goes out unmapped and nothing comes back
}
