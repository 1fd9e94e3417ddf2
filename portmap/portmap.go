// Package portmap asks the home router for a UDP port mapping of the
// node's socket, so that peers can reach it at a public address even
// behind a NAT that would drop their packets: with PCP (RFC 6887),
// NAT-PMP (RFC 6886) and UPnP IGD (v1 and v2), probed together with a
// short timeout, as Tailscale's portmapper does, then mapped by the most
// preferred one that answered (only one: a router's protocols share one
// table). The mapping is renewed before it expires and deleted when the
// node stops.
//
// Only UDP is mapped (the node speaks nothing else), and only the node's
// own port, to its own LAN address: no router is asked for anything a
// peer could not already reach through a punched hole.
package portmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"
)

// Protocols, in the order they are preferred when several answer: PCP
// and NAT-PMP are one round trip and renew cheaply; UPnP needs discovery
// and HTTP.
const (
	PCP    = "pcp"
	NATPMP = "nat-pmp"
	UPnP   = "upnp"
)

// Timings.
const (
	// probeTimeout bounds one attempt of all the protocols together: a
	// router on the LAN answers within milliseconds, UPnP discovery
	// within a second or two; a router that says nothing in this long
	// does not map ports.
	probeTimeout = 3 * time.Second
	// lifetime is the mapping lifetime asked for: two hours, the common
	// NAT-PMP default; it is renewed at half.
	lifetime = 2 * time.Hour
	// minRenew keeps a router that grants a very short lifetime from
	// making us ask again and again.
	minRenew = 30 * time.Second
	// deleteTimeout bounds the deletion of a mapping when the node stops.
	deleteTimeout = 2 * time.Second
)

// ErrNoMapping is returned (wrapped, with what each protocol said) when
// no protocol got a mapping.
var ErrNoMapping = errors.New("the router mapped no port")

// Mapping is a port the router forwards to the node.
type Mapping struct {
	Protocol string         // PCP, NATPMP or UPnP
	External netip.AddrPort // the public address peers send to
	Internal netip.AddrPort // the node's LAN address and port
	Gateway  netip.Addr     // the router that mapped it
	Lifetime time.Duration  // as granted
	Expires  time.Time
}

// renewAt is when the mapping is renewed: halfway through its life.
func (m Mapping) renewAt() time.Time {
	half := m.Lifetime / 2
	if half < minRenew {
		half = minRenew
	}
	return m.Expires.Add(-m.Lifetime).Add(half)
}

// mapper is one protocol.
type mapper interface {
	name() string
	// probe asks whether the router speaks the protocol, changing
	// nothing there.
	probe(ctx context.Context, gw netip.Addr, local netip.Addr) error
	// add asks for a mapping of internal (the node's LAN address and
	// port) for lifetime, and returns what the router granted.
	add(ctx context.Context, gw netip.Addr, internal netip.AddrPort, lifetime time.Duration) (Mapping, error)
	// remove deletes a mapping it made.
	remove(ctx context.Context, m Mapping) error
}

// Config says what to map and how.
type Config struct {
	// Port is the node's UDP port, the one to map.
	Port int
	// Protocols limits the protocols tried (tests); empty means all.
	Protocols []string
	// Gateway and Local, if set, are the router and our address towards
	// it; empty means the default route's (tests set them).
	Gateway netip.Addr
	Local   netip.Addr
	// PCPNonce is the nonce of the PCP mapping, which a router asks of
	// every renewal and of the deletion. Zero means a random one per
	// Client; a node that derives it from its key can renew or delete
	// what it mapped before a crash or restart.
	PCPNonce [12]byte
	Logger   *slog.Logger
}

// Client gets and keeps one mapping.
type Client struct {
	cfg     Config
	log     *slog.Logger
	mappers []mapper
}

// New returns a client for cfg.
func New(cfg Config) *Client {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	var ms []mapper
	for _, m := range []mapper{newPCPMapper(cfg.PCPNonce), natpmpMapper{}, &upnpMapper{}} {
		if len(cfg.Protocols) == 0 || slices.Contains(cfg.Protocols, m.name()) {
			ms = append(ms, m)
		}
	}
	return &Client{cfg: cfg, log: log, mappers: ms}
}

// Map asks the router for a mapping of the node's port, as Tailscale's
// portmapper does: every protocol is probed at once (a probe changes
// nothing on the router), and the most preferred one that answered (PCP,
// then NAT-PMP, then UPnP) maps the port, as soon as every protocol
// before it has failed its probe; if its mapping fails, the next one
// that answered tries. Only one protocol ever maps: a router that speaks
// several keeps one table, and a second protocol's request for the same
// port replaces the first one's mapping (which that one could then
// neither renew nor delete). All within probeTimeout. The error says
// what each protocol answered.
func (c *Client) Map(ctx context.Context) (Mapping, error) {
	gw, local, err := c.route()
	if err != nil {
		return Mapping{}, fmt.Errorf("map port: %w", err)
	}
	internal := netip.AddrPortFrom(local, uint16(c.cfg.Port))
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel() // the probes still running need not finish
	answers := make(chan probeAnswer, len(c.mappers))
	for i, m := range c.mappers {
		go func() { answers <- probeAnswer{i, m.probe(ctx, gw, local)} }()
	}
	probes := make([]*probeAnswer, len(c.mappers))
	errs := make([]error, len(c.mappers))
	tried := make([]bool, len(c.mappers))
	for pending := len(c.mappers); ; {
		if i := nextToMap(probes, tried); i >= 0 {
			tried[i] = true
			m, err := c.mappers[i].add(ctx, gw, internal, lifetime)
			if err == nil && !reachableExternal(m.External.Addr()) {
				// A router behind another NAT (a carrier's) maps its own
				// private or shared address: no peer can reach that, and
				// naming it would send peers to someone else's host.
				c.mappers[i].remove(ctx, m)
				err = fmt.Errorf("the router's external address %s is not public: it sits behind another NAT", m.External.Addr())
			}
			if err == nil {
				return m, nil
			}
			errs[i] = err
			continue
		}
		if pending == 0 {
			break
		}
		a := <-answers // each probe ends by ctx's deadline at the latest
		pending--
		probes[a.i], errs[a.i] = &a, a.err
	}
	var named []error
	for i, err := range errs {
		if err != nil {
			named = append(named, fmt.Errorf("%s: %w", c.mappers[i].name(), err))
		}
	}
	return Mapping{}, fmt.Errorf("%w via %s: %w", ErrNoMapping, gw, errors.Join(named...))
}

// probeAnswer is what one protocol's probe answered.
type probeAnswer struct {
	i   int // the protocol's place in order of preference
	err error
}

// nextToMap returns the protocol to map with next, or -1 while there is
// none yet: the first in order of preference whose probe answered and
// that has not tried, once every protocol before it failed its probe or
// tried.
func nextToMap(probes []*probeAnswer, tried []bool) int {
	for i, p := range probes {
		switch {
		case p == nil:
			return -1
		case p.err == nil && !tried[i]:
			return i
		}
	}
	return -1
}

// Remove deletes a mapping Map made.
func (c *Client) Remove(ctx context.Context, m Mapping) error {
	for _, mp := range c.mappers {
		if mp.name() == m.Protocol {
			return mp.remove(ctx, m)
		}
	}
	return fmt.Errorf("remove mapping: unknown protocol %q", m.Protocol)
}

// release deletes m, bounded in time.
func (c *Client) release(m Mapping) {
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	for _, mp := range c.mappers {
		if mp.name() == m.Protocol {
			if err := mp.remove(ctx, m); err != nil {
				c.log.Debug("delete port mapping", "protocol", m.Protocol, "external", m.External, "err", err)
			}
		}
	}
}

// route returns the router and our address towards it.
func (c *Client) route() (gw, local netip.Addr, err error) {
	if c.cfg.Gateway.IsValid() && c.cfg.Local.IsValid() {
		return c.cfg.Gateway, c.cfg.Local, nil
	}
	return defaultRoute()
}

// sharedAddressSpace is the carriers' range (RFC 6598), behind which a
// home router's external address is no public one.
var sharedAddressSpace = netip.MustParsePrefix("100.64.0.0/10")

// reachableExternal reports whether a router's external address can be
// reached from the internet: global unicast, not private, not the
// carriers' shared range.
func reachableExternal(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !sharedAddressSpace.Contains(ip)
}
