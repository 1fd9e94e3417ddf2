package lab

import (
	"fmt"
	"net/netip"
)

// IPv6 plan (documentation prefix, RFC 3849): the internet segment is
// 2001:db8::/64 with the internet namespace routing between sites at
// 2001:db8::1; site n's router is 2001:db8::1:n there and routes
// 2001:db8:0:n::/64 to its LAN, where host m is 2001:db8:0:n::(9+m). A
// host of a None site sits on the internet segment at 2001:db8::1:n.
var internet6 = netip.MustParsePrefix("2001:db8::/64")

func inet6Router() netip.Addr { return netip.MustParseAddr("2001:db8::1") }

// ip6tablesCmd is the IPv6 firewall tool of the lab's routers, of the
// same (legacy) backend as iptablesCmd.
const ip6tablesCmd = "ip6tables-legacy"

// EnableIPv6 gives the site global IPv6 addresses, as a dual-stack home
// has: the router routes its LAN's /64 and filters statefully (no NAT:
// only what answers traffic a host sent gets in, from that address and
// port, so two such hosts connect by sending to each other at once); its
// IPv4 side stays as its kind makes it. A None site's host gets an
// address on the internet segment and no filter. Hosts added before and
// after get an address.
func (s *Site) EnableIPv6() error {
	if s.kind == carrierGrade || s.upstream != nil {
		return fmt.Errorf("enable IPv6: not for a carrier or a home behind one")
	}
	if s.ipv6 {
		return nil
	}
	if err := s.lab.enableIPv6(); err != nil {
		return err
	}
	if s.router != "" {
		if err := s.buildIPv6Router(); err != nil {
			return fmt.Errorf("enable IPv6: %w", err)
		}
	}
	s.ipv6 = true
	for i, h := range s.hosts {
		if err := s.addHostIPv6(h, i+1); err != nil {
			return fmt.Errorf("enable IPv6: %w", err)
		}
	}
	return nil
}

// enableIPv6 makes the internet namespace an IPv6 router, once.
func (l *Lab) enableIPv6() error {
	l.mu.Lock()
	done := l.ipv6
	l.ipv6 = true
	l.mu.Unlock()
	if done {
		return nil
	}
	if _, err := execIn(l.inet, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"); err != nil {
		return err
	}
	return ipIn(l.inet, "-6", "addr", "add", netip.PrefixFrom(inet6Router(), internet6.Bits()).String(), "dev", "br0", "nodad")
}

// wan6 is site n's address on the IPv6 internet segment.
func (s *Site) wan6() netip.Addr {
	b := internet6.Addr().As16()
	b[13] = 1
	b[14], b[15] = byte(s.n>>8), byte(s.n)
	return netip.AddrFrom16(b)
}

// lan6 is address host of the site's IPv6 LAN (1: the router).
func (s *Site) lan6(host int) netip.Addr {
	b := internet6.Addr().As16()
	b[6], b[7] = byte(s.n>>8), byte(s.n)
	b[15] = byte(host)
	return netip.AddrFrom16(b)
}

func (s *Site) buildIPv6Router() error {
	l := s.lab
	lan := netip.PrefixFrom(s.lan6(0), 64)
	steps := []struct {
		ns   string
		args []string
	}{
		{s.router, []string{"-6", "addr", "add", netip.PrefixFrom(s.wan6(), internet6.Bits()).String(), "dev", "wan0", "nodad"}},
		{s.router, []string{"-6", "addr", "add", netip.PrefixFrom(s.lan6(1), 64).String(), "dev", "br-lan", "nodad"}},
		{s.router, []string{"-6", "route", "add", "default", "via", inet6Router().String()}},
		{l.inet, []string{"-6", "route", "add", lan.String(), "via", s.wan6().String()}},
	}
	for _, st := range steps {
		if err := ipIn(st.ns, st.args...); err != nil {
			return err
		}
	}
	if _, err := execIn(s.router, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"); err != nil {
		return err
	}
	// A stateful firewall, as home routers have for IPv6: answers get in,
	// ICMPv6 too (path MTU discovery), nothing else from outside.
	for _, r := range [][]string{
		{"-A", "FORWARD", "-i", "wan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", "wan0", "-p", "ipv6-icmp", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", "wan0", "-j", "DROP"},
	} {
		if _, err := execIn(s.router, append([]string{ip6tablesCmd, "-w"}, r...)...); err != nil {
			return err
		}
	}
	return nil
}

// addHostIPv6 gives host m of the site its global IPv6 address.
func (s *Site) addHostIPv6(h *Host, m int) error {
	if s.router == "" {
		h.ip6 = s.wan6()
		if err := ipIn(h.name, "-6", "addr", "add", netip.PrefixFrom(h.ip6, internet6.Bits()).String(), "dev", "eth0", "nodad"); err != nil {
			return err
		}
		return ipIn(h.name, "-6", "route", "add", "default", "via", inet6Router().String())
	}
	h.ip6 = s.lan6(9 + m)
	if err := ipIn(h.name, "-6", "addr", "add", netip.PrefixFrom(h.ip6, 64).String(), "dev", "eth0", "nodad"); err != nil {
		return err
	}
	return ipIn(h.name, "-6", "route", "add", "default", "via", s.lan6(1).String())
}

// IP6 returns the host's global IPv6 address, or the zero address while
// its site has no IPv6 (EnableIPv6).
func (h *Host) IP6() netip.Addr { return h.ip6 }
