// Package simnet is an in-process network of hosts behind simulated NATs,
// so that hole punching can be tested without root, in milliseconds.
//
// A [Net] is the internet. Each [Site] on it is a router with a public
// address and a LAN behind it, translating and filtering as its [NAT]
// says (RFC 4787: endpoint-independent, address-dependent or
// address-and-port-dependent mapping and filtering, hairpinning, mapping
// timeouts), or a segment of hosts with public addresses and no NAT.
// Hosts open [Conn]s, which are net.PacketConns: a quic.Transport runs on
// one as on a UDP socket. A site's uplink can add delay and loss.
//
// It is a model, checked against the kernel lab (package lab), which
// stays the proof: what connects here must connect there.
package simnet

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// Address plan. Public addresses come from the benchmarking range
// (RFC 2544), which no real host uses; each site's LAN is a /24 of
// 10.0.0.0/8 of its own.
var (
	firstPublic = netip.MustParseAddr("198.18.0.1")
	lanBase     = netip.MustParseAddr("10.0.0.0")
)

// firstEphemeral is where a host starts handing out ports for Listen(0),
// as Linux's ip_local_port_range does.
const firstEphemeral = 32768

// ErrAddrInUse is returned by Listen for a port that is taken.
var ErrAddrInUse = errors.New("address already in use")

// Link is what a site's uplink does to every packet that crosses it, in
// either direction.
type Link struct {
	Delay time.Duration // added one way
	Loss  float64       // probability of a drop, 0 to 1
}

// Config configures a Net. The zero value is usable.
type Config struct {
	// Seed makes the random choices (loss, random ports) repeatable.
	Seed uint64
	// Logf, if set, is told about every packet that is dropped and why.
	Logf func(format string, args ...any)
}

// Net is a simulated internet. It is safe for concurrent use.
type Net struct {
	logf func(format string, args ...any)

	mu         sync.Mutex // guards following and all sites, hosts and NAT tables
	rng        *rand.Rand
	public     map[netip.Addr]*Site // who holds each public address
	nextPublic netip.Addr
	sites      int
}

// New returns an empty network.
func New(cfg Config) *Net {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &Net{
		logf:       logf,
		rng:        rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		public:     map[netip.Addr]*Site{},
		nextPublic: firstPublic,
	}
}

// Site is a router and its LAN, or a segment of public hosts.
type Site struct {
	net    *Net
	nat    *table     // nil: no NAT
	public netip.Addr // the router's address; zero without NAT
	prefix netip.Prefix
	link   Link // the uplink
	lan    Link // between hosts of the site
	hosts  map[netip.Addr]*Host
	next   netip.Addr // the next LAN address to hand out
}

// AddSite adds a site whose router behaves as nat says; nil means no NAT:
// each host gets a public address and nothing filters.
func (n *Net) AddSite(nat *NAT) *Site {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := &Site{net: n, hosts: map[netip.Addr]*Host{}}
	if nat != nil {
		s.public = n.allocPublicLocked(s)
		s.nat = newTable(*nat, s.public)
		b := lanBase.As4()
		b[1], b[2] = byte(n.sites>>8), byte(n.sites)
		s.prefix = netip.PrefixFrom(netip.AddrFrom4(b), 24)
		s.next = s.prefix.Addr().Next().Next() // .1 is the router
	}
	n.sites++
	return s
}

func (n *Net) allocPublicLocked(s *Site) netip.Addr {
	a := n.nextPublic
	n.nextPublic = a.Next()
	n.public[a] = s
	return a
}

// PublicIP returns the router's public address; zero for a site without NAT.
func (s *Site) PublicIP() netip.Addr { return s.public }

// SetLink sets what the site's uplink does to packets from now on.
func (s *Site) SetLink(l Link) {
	s.net.mu.Lock()
	defer s.net.mu.Unlock()
	s.link = l
}

// SetLANLink sets what the LAN does to packets between hosts of the site
// from now on (not to those that hairpin through the router).
func (s *Site) SetLANLink(l Link) {
	s.net.mu.Lock()
	defer s.net.mu.Unlock()
	s.lan = l
}

// SetFiltering changes how the site's router filters from now on, its
// mappings kept: a router whose user forwards a port, or turns on
// endpoint-independent filtering, becomes easy to reach at once.
func (s *Site) SetFiltering(b Behavior) {
	s.net.mu.Lock()
	defer s.net.mu.Unlock()
	if s.nat != nil {
		s.nat.cfg.Filtering = b
	}
}

// Flush forgets every NAT mapping, as a router reboot does.
func (s *Site) Flush() {
	s.net.mu.Lock()
	defer s.net.mu.Unlock()
	if s.nat != nil {
		s.nat.flush()
	}
}

// Host is a computer on a site.
type Host struct {
	site  *Site
	ip    netip.Addr
	conns map[uint16]*Conn // guarded by the Net's mu
	port  uint16           // the next ephemeral port to try
}

// AddHost adds a host: on the LAN behind the router, or with a public
// address of its own on a site without NAT.
func (s *Site) AddHost() *Host {
	n := s.net
	n.mu.Lock()
	defer n.mu.Unlock()
	h := &Host{site: s, conns: map[uint16]*Conn{}, port: firstEphemeral}
	if s.nat == nil {
		h.ip = n.allocPublicLocked(s)
	} else {
		h.ip = s.next
		s.next = s.next.Next()
	}
	s.hosts[h.ip] = h
	return h
}

// IP returns the host's address: private behind a NAT, else public.
func (h *Host) IP() netip.Addr { return h.ip }

// Listen opens a socket on port; 0 picks a free one.
func (h *Host) Listen(port uint16) (*Conn, error) {
	n := h.site.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if port == 0 {
		for h.conns[h.port] != nil {
			h.port++
		}
		port = h.port
		h.port++
	}
	if h.conns[port] != nil {
		return nil, fmt.Errorf("listen %s: %w", netip.AddrPortFrom(h.ip, port), ErrAddrInUse)
	}
	c := newConn(n, h, netip.AddrPortFrom(h.ip, port))
	h.conns[port] = c
	return c, nil
}

func (h *Host) unbind(c *Conn) {
	n := h.site.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if h.conns[c.addr.Port()] == c {
		delete(h.conns, c.addr.Port())
	}
}

// send carries one datagram from c to dst.
func (n *Net) send(c *Conn, dst netip.AddrPort, b []byte) {
	now := time.Now()
	n.mu.Lock()
	to, from, delay, drop := n.routeLocked(c.host, c.addr, dst, now)
	n.mu.Unlock()
	if drop == "" && !to.deliver(from, bytes.Clone(b), now.Add(delay)) {
		drop = "receive queue full or socket closed"
	}
	if drop != "" {
		n.logf("simnet: %s → %s (%d bytes) dropped: %s", c.addr, dst, len(b), drop)
	}
}

// routeLocked finds where a datagram from src on host h to dst ends up:
// the receiving socket, the source address it sees, and the delay; or why
// it is dropped.
func (n *Net) routeLocked(h *Host, src, dst netip.AddrPort, now time.Time) (to *Conn, from netip.AddrPort, delay time.Duration, drop string) {
	s := h.site
	if peer := s.hosts[dst.Addr()]; peer != nil { // on the same LAN
		if n.rng.Float64() < s.lan.Loss {
			return nil, src, 0, "lost on the LAN"
		}
		to, from, _, drop = peer.socketLocked(dst.Port(), src)
		return to, from, s.lan.Delay, drop
	}
	from = src
	if s.nat != nil {
		if dst.Addr() == s.public {
			return n.hairpinLocked(s, src, dst, now)
		}
		from = s.nat.outbound(src, dst, now, n.randPort)
	}
	if n.rng.Float64() < s.link.Loss {
		return nil, from, 0, "lost on the sender's uplink"
	}
	t := n.public[dst.Addr()]
	if t == nil {
		return nil, from, 0, "no such address"
	}
	if n.rng.Float64() < t.link.Loss {
		return nil, from, 0, "lost on the receiver's uplink"
	}
	delay = s.link.Delay + t.link.Delay
	inside := dst
	if t.nat != nil {
		var ok bool
		if inside, ok = t.nat.inbound(from, dst.Port(), now); !ok {
			return nil, from, 0, "filtered by the receiver's NAT"
		}
	}
	to, from, _, drop = t.hosts[inside.Addr()].socketLocked(inside.Port(), from)
	return to, from, delay, drop
}

// hairpinLocked carries a datagram from inside site s to its own public
// address back in, if the router hairpins: it is mapped on the way out
// and filtered on the way in like any other.
func (n *Net) hairpinLocked(s *Site, src, dst netip.AddrPort, now time.Time) (*Conn, netip.AddrPort, time.Duration, string) {
	if !s.nat.cfg.Hairpin {
		return nil, src, 0, "the router does not hairpin"
	}
	from := s.nat.outbound(src, dst, now, n.randPort)
	inside, ok := s.nat.inbound(from, dst.Port(), now)
	if !ok {
		return nil, from, 0, "filtered by the router (hairpin)"
	}
	return s.hosts[inside.Addr()].socketLocked(inside.Port(), from)
}

// socketLocked returns the socket bound to port on h, if any.
func (h *Host) socketLocked(port uint16, from netip.AddrPort) (*Conn, netip.AddrPort, time.Duration, string) {
	if h == nil {
		return nil, from, 0, "no such host"
	}
	c := h.conns[port]
	if c == nil {
		return nil, from, 0, "port unreachable"
	}
	return c, from, 0, ""
}

// randPort draws a public port for a NAT that randomises them.
func (n *Net) randPort() uint16 {
	return uint16(minPublicPort + n.rng.IntN(numPublicPort))
}
