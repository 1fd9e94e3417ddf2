package lab

import (
	"fmt"
	"net/netip"
	"strconv"
)

// carrierGrade is the kind of a carrier's NAT (NewCarrier): plain
// MASQUERADE, which keeps ports, with unsolicited traffic dropped, as
// PortRestricted; it serves home routers, not hosts.
const carrierGrade NATKind = "carrier-grade"

// Carrier-grade NAT plan: carrier n's network is 100.64.n.0/24 (RFC 6598
// shared address space), its router .1, home m's router .(9+m). Each home
// gets a share of the carrier's ports, homePorts wide from firstHomePort,
// which its hosts, its router and the carrier all keep: so the carrier
// knows whose a public port is, as a real carrier-grade NAT's port block
// allocation does, and can hairpin.
const (
	firstHomePort = 20000
	homePorts     = 4000
	maxHomes      = (65536 - firstHomePort) / homePorts
)

// NewCarrier adds a carrier-grade NAT: a router on the internet whose
// network (in 100.64.0.0/10) holds home routers (NewSiteBehind) rather
// than hosts. Its NAT keeps ports and lets nothing unsolicited in from
// the internet. With hairpin, a home reaching the carrier's public
// address at a port of another home's share gets there, from the
// carrier's public address (RFC 4787 REQ-9); without, the carrier drops
// it, as many do.
func (l *Lab) NewCarrier(hairpin bool) (*Site, error) {
	s, err := l.register(carrierGrade)
	if err != nil {
		return nil, err
	}
	s.lan = netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, byte(s.n), 0}), 24)
	s.hairpin = hairpin
	if err := s.buildRouter(false); err != nil {
		return nil, fmt.Errorf("add carrier: %w", err)
	}
	if !hairpin {
		// What a home sends to the carrier's public address stops here,
		// before it reaches the router's own stack.
		if err := s.iptables([]string{"-A", "INPUT", "-i", "br-lan", "-d", s.public.String(), "-j", "DROP"}); err != nil {
			return nil, fmt.Errorf("add carrier: %w", err)
		}
		return s, nil
	}
	// Hairpinned traffic leaves from the carrier's public address, so
	// that the other home answers through the carrier too.
	err = s.iptables([]string{"-t", "nat", "-A", "POSTROUTING", "-o", "br-lan", "-s", s.lan.String(), "-d", s.lan.String(),
		"-m", "conntrack", "--ctstate", "DNAT", "-j", "SNAT", "--to-source", s.public.String()})
	if err != nil {
		return nil, fmt.Errorf("add carrier: %w", err)
	}
	return s, nil
}

// Hairpin says whether a carrier hairpins.
func (s *Site) Hairpin() bool { return s.hairpin }

// NewSiteBehind adds a home router of kind whose outside is carrier's
// network: a double NAT. Its PublicIP is the carrier's.
func (l *Lab) NewSiteBehind(carrier *Site, kind NATKind) (*Site, error) {
	if carrier.kind != carrierGrade {
		return nil, fmt.Errorf("add site behind %s: not a carrier", carrier.kind)
	}
	switch kind {
	case FullCone, AddressRestricted, PortRestricted, Symmetric:
	default:
		return nil, fmt.Errorf("add site behind a carrier: a %q site has no router", kind)
	}
	l.mu.Lock()
	m := len(carrier.homes) + 1
	l.mu.Unlock()
	if m > maxHomes {
		return nil, fmt.Errorf("add site behind a carrier: at most %d homes", maxHomes)
	}
	s, err := l.register(kind)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	carrier.homes = append(carrier.homes, s)
	l.mu.Unlock()
	s.upstream = carrier
	s.public = carrier.lanIP(9 + m)
	first := firstHomePort + (m-1)*homePorts
	s.ports = portRange{first, first + homePorts - 1}
	if err := s.buildHome(m); err != nil {
		return nil, fmt.Errorf("add %s site behind a carrier: %w", kind, err)
	}
	return s, nil
}

// buildHome makes a home router whose wan0 is on its carrier's br-lan.
func (s *Site) buildHome(m int) error {
	l, c := s.lab, s.upstream
	s.router = fmt.Sprintf("%s-r%d", l.prefix, s.n)
	if err := l.addNamespace(s.router); err != nil {
		return err
	}
	port := "home" + strconv.Itoa(m)
	if err := ipIn(s.router, "link", "add", "wan0", "type", "veth", "peer", "name", port, "netns", c.router); err != nil {
		return err
	}
	steps := []nsStep{
		{c.router, []string{"link", "set", port, "master", "br-lan", "up"}},
		{s.router, []string{"addr", "add", netip.PrefixFrom(s.public, c.lan.Bits()).String(), "dev", "wan0"}},
		{s.router, []string{"link", "set", "wan0", "up"}},
		{s.router, []string{"route", "add", "default", "via", c.lanIP(1).String()}},
	}
	steps = append(steps, s.lanSteps(netip.PrefixFrom(s.lanIP(1), s.lan.Bits()).String())...)
	if err := s.finishRouter(steps); err != nil {
		return err
	}
	if c.hairpin {
		// The carrier sends what its homes address to this home's share
		// of its public ports here, ports kept.
		return c.iptables([]string{"-t", "nat", "-A", "PREROUTING", "-i", "br-lan", "-d", c.public.String(), "-p", "udp",
			"--dport", strconv.Itoa(s.ports.first) + ":" + strconv.Itoa(s.ports.last), "-j", "DNAT", "--to-destination", s.public.String()})
	}
	return nil
}
