package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"

	"github.com/punchdrop/punchdrop/lab/linkem"
)

// Site is a router of one NAT kind and the hosts on its LAN. For None
// there is no router: the one host sits on the internet segment. A
// carrier (NewCarrier) is a site whose LAN holds home routers instead of
// hosts; a home behind one (NewSiteBehind) is a double NAT.
type Site struct {
	lab      *Lab
	kind     NATKind
	n        int    // site number, from 1
	router   string // router namespace; empty for None
	public   netip.Addr
	lan      netip.Prefix // the hosts' (or a carrier's homes') network
	upstream *Site        // the carrier this home is behind, or nil
	ports    portRange    // a home's share of its carrier's ports, or zero
	hairpin  bool         // a carrier: its homes reach each other through its public address
	homes    []*Site      // a carrier's homes
	hosts    []*Host
	ipv6     bool         // EnableIPv6 ran: hosts get global IPv6 addresses
	loss     string       // probability of the current loss rule, or ""
	link     *linkem.Link // the emulated link to the internet, or nil
}

// portRange is an inclusive range of UDP and TCP ports; zero is none.
type portRange struct{ first, last int }

func (r portRange) String() string { return fmt.Sprintf("%d-%d", r.first, r.last) }

// Host is a namespace with one interface, where programs under test run.
type Host struct {
	name string
	ip   netip.Addr
	ip6  netip.Addr // its global IPv6 address, once its site has IPv6
}

// NewSite adds a site with a router of the given kind.
func (l *Lab) NewSite(kind NATKind) (*Site, error) { return l.newSite(kind, false) }

// NewSiteWithLAN adds a site of kind whose LAN is lan (a /24) rather than
// its own part of 198.19.0.0/16: two homes that both use 192.168.1.0/24,
// as most do, have hosts of the same addresses.
func (l *Lab) NewSiteWithLAN(kind NATKind, lan netip.Prefix) (*Site, error) {
	if kind == None {
		return nil, fmt.Errorf("add site: a %s site has no LAN", kind)
	}
	if !lan.Addr().Is4() || lan.Bits() != 24 || lan.Masked() != lan {
		return nil, fmt.Errorf("add site: LAN %s is not an IPv4 /24", lan)
	}
	return l.newSiteOn(kind, false, lan)
}

// NewLinkedSite adds a site whose router reaches the internet through an
// emulated link (package linkem) that SetLink shapes: delay, jitter,
// loss, reordering and rate, each way. Until then the link passes
// everything at once.
func (l *Lab) NewLinkedSite(kind NATKind) (*Site, error) {
	if kind == None {
		return nil, fmt.Errorf("add linked site: a %s site has no router to link", kind)
	}
	return l.newSite(kind, true)
}

// register numbers a new site and gives it its public address and LAN.
func (l *Lab) register(kind NATKind) (*Site, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.sites) + 1
	if n > maxSites {
		return nil, fmt.Errorf("add site: at most %d sites per lab", maxSites)
	}
	s := &Site{lab: l, kind: kind, n: n, public: netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + n)})}
	s.lan = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(n), 0}), 24)
	l.sites = append(l.sites, s)
	return s, nil
}

func (l *Lab) newSite(kind NATKind, linked bool) (*Site, error) {
	return l.newSiteOn(kind, linked, netip.Prefix{})
}

// newSiteOn adds a site whose LAN is lan, or its own when lan is zero.
func (l *Lab) newSiteOn(kind NATKind, linked bool, lan netip.Prefix) (*Site, error) {
	switch kind {
	case None, FullCone, AddressRestricted, PortRestricted, Symmetric:
	default:
		return nil, fmt.Errorf("add site: unknown NAT kind %q", kind)
	}
	s, err := l.register(kind)
	if err != nil || kind == None {
		return s, err
	}
	if lan.IsValid() {
		s.lan = lan
	}
	if err := s.buildRouter(linked); err != nil {
		return nil, fmt.Errorf("add %s site: %w", kind, err)
	}
	if linked {
		if err := s.waitOnline(); err != nil {
			return nil, fmt.Errorf("add %s site: %w", kind, err)
		}
	}
	return s, nil
}

// Kind returns the site's NAT kind.
func (s *Site) Kind() NATKind { return s.kind }

// PublicIP is the address the internet sees the site's hosts come from:
// the router's internet-side address (its carrier's, for a home behind
// one), or for None the host's.
func (s *Site) PublicIP() netip.Addr {
	if s.upstream != nil {
		return s.upstream.PublicIP()
	}
	return s.public
}

// WANIP is the router's own outside address: PublicIP, except for a home
// behind a carrier, where it is the home's address on the carrier's
// network (100.64.0.0/10).
func (s *Site) WANIP() netip.Addr { return s.public }

func (s *Site) lanIP(host int) netip.Addr {
	b := s.lan.Addr().As4()
	b[3] = byte(host)
	return netip.AddrFrom4(b)
}

// buildRouter makes the router namespace: wan0 on the internet bridge
// (through an emulated link when linked), br-lan for the hosts,
// forwarding on, and the NAT rules of its kind.
func (s *Site) buildRouter(linked bool) error {
	l := s.lab
	s.router = fmt.Sprintf("%s-r%d", l.prefix, s.n)
	if err := l.addNamespace(s.router); err != nil {
		return err
	}
	port := fmt.Sprintf("r%d", s.n)
	if linked {
		if err := s.buildLink(port); err != nil {
			return err
		}
	} else if err := ipIn(s.router, "link", "add", "wan0", "type", "veth", "peer", "name", port, "netns", l.inet); err != nil {
		return err
	}
	lan := netip.PrefixFrom(s.lanIP(1), s.lan.Bits()).String()
	steps := []nsStep{
		{l.inet, []string{"link", "set", port, "master", "br0", "up"}},
		{s.router, []string{"addr", "add", prefixed(s.public), "dev", "wan0"}},
		{s.router, []string{"link", "set", "wan0", "up"}},
	}
	return s.finishRouter(append(steps, s.lanSteps(lan)...))
}

// finishRouter runs the ip steps that wire the router up, makes it
// forward, and gives it the filter and NAT rules of its kind.
func (s *Site) finishRouter(steps []nsStep) error {
	for _, st := range steps {
		if err := ipIn(st.ns, st.args...); err != nil {
			return err
		}
	}
	for _, key := range routerSysctls {
		if _, err := execIn(s.router, "sysctl", "-qw", key); err != nil {
			return err
		}
	}
	if s.kind == AddressRestricted {
		if _, err := execIn(s.router, "ipset", "create", addrFilterSet, "hash:ip,port", "timeout", "120"); err != nil {
			return err
		}
	}
	return s.iptables(natRules(s.kind, s.public, s.lan, s.ports)...)
}

// nsStep is an ip command to run in a namespace.
type nsStep struct {
	ns   string
	args []string
}

// lanSteps make the router's br-lan with address lan.
func (s *Site) lanSteps(lan string) []nsStep {
	return []nsStep{
		{s.router, []string{"link", "add", "br-lan", "type", "bridge"}},
		{s.router, []string{"addr", "add", lan, "dev", "br-lan"}},
		{s.router, []string{"link", "set", "br-lan", "up"}},
	}
}

// routerSysctls make a namespace forward like a router.
var routerSysctls = []string{"net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"}

// natRules returns the iptables commands that make a router of kind
// for the hosts on lan, translating to public (within ports, when not
// zero). Only the hosts' traffic is translated, as in a real router: the
// router's own (a port mapper asking STUN for its address) leaves from
// its public address as it is. For the restricting kinds, unsolicited
// traffic is dropped in FORWARD and, explicitly, in INPUT: a datagram
// that reaches the router's own stack would otherwise create a conntrack
// entry that makes MASQUERADE pick a different port later, which real
// routers do not do.
func natRules(kind NATKind, public netip.Addr, lan netip.Prefix, ports portRange) [][]string {
	dropUnsolicited := [][]string{
		{"-A", "FORWARD", "-i", "wan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"-A", "FORWARD", "-i", "wan0", "-j", "DROP"},
		{"-A", "INPUT", "-i", "wan0", "-j", "DROP"},
	}
	src := lan.String()
	// translate returns the POSTROUTING rules of target; with ports, a
	// rule for UDP and one for TCP keep to them before one for the rest.
	translate := func(target ...string) [][]string {
		rule := func(extra ...string) []string {
			r := append([]string{"-t", "nat", "-A", "POSTROUTING", "-o", "wan0", "-s", src}, extra...)
			return append(r, target...)
		}
		if ports == (portRange{}) {
			return [][]string{rule()}
		}
		var out [][]string
		for _, proto := range []string{"udp", "tcp"} {
			r := rule("-p", proto)
			if target[1] == "SNAT" {
				r[len(r)-1] += ":" + ports.String()
			} else {
				r = append(r, "--to-ports", ports.String())
			}
			out = append(out, r)
		}
		return append(out, rule())
	}
	snat := translate("-j", "SNAT", "--to-source", public.String())
	switch kind {
	case FullCone:
		// The DNAT half is added with the host (it needs its address).
		return snat
	case AddressRestricted:
		// As FullCone, and the filter: each datagram a host sends notes
		// (its destination's address, its port) in the ipset, which
		// lets in datagrams from that address, whatever their source
		// port, to that port (the host's: the DNAT added with the host
		// keeps ports). An entry lives as long as conntrack keeps a UDP
		// flow that saw replies, and each datagram out renews it.
		return append(snat, [][]string{
			{"-A", "FORWARD", "-o", "wan0", "-s", src, "-p", "udp", "-j", "SET", "--add-set", addrFilterSet, "dst,src", "--exist", "--timeout", "120"},
			{"-A", "FORWARD", "-i", "wan0", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
			{"-A", "FORWARD", "-i", "wan0", "-p", "udp", "-m", "set", "--match-set", addrFilterSet, "src,dst", "-j", "ACCEPT"},
			{"-A", "FORWARD", "-i", "wan0", "-j", "DROP"},
			{"-A", "INPUT", "-i", "wan0", "-j", "DROP"},
		}...)
	case PortRestricted, carrierGrade:
		return append(translate("-j", "MASQUERADE"), dropUnsolicited...)
	case Symmetric:
		rules := translate("-j", "MASQUERADE")
		for i := range rules {
			rules[i] = append(rules[i], "--random-fully")
		}
		return append(rules, dropUnsolicited...)
	}
	return nil
}

// addrFilterSet is the ipset an address-restricted router filters with.
const addrFilterSet = "addr-filter"

// iptablesCmd is the firewall tool of the lab's routers: the legacy
// (x_tables) backend, because miniupnpd-iptables, the port mapper some
// routers run, writes its rules through libiptc into those tables; rules
// of both backends would otherwise meet in one router unseen by each
// other (an nf_tables drop of what a legacy rule forwards).
const iptablesCmd = "iptables-legacy"

func (s *Site) iptables(rules ...[]string) error {
	for _, r := range rules {
		if _, err := execIn(s.router, append([]string{iptablesCmd, "-w"}, r...)...); err != nil {
			return err
		}
	}
	return nil
}

// NewHost adds a host to the site. None, FullCone and AddressRestricted
// sites take one host, a carrier none (it takes homes: NewSiteBehind).
func (s *Site) NewHost() (*Host, error) {
	l := s.lab
	if s.kind == carrierGrade {
		return nil, fmt.Errorf("add host: a carrier's network holds homes, not hosts")
	}
	if (s.kind == None || s.kind == FullCone || s.kind == AddressRestricted) && len(s.hosts) > 0 {
		return nil, fmt.Errorf("add host: a %s site has room for one host", s.kind)
	}
	m := len(s.hosts) + 1
	h := &Host{name: fmt.Sprintf("%s-h%d-%d", l.prefix, s.n, m)}
	if err := l.addNamespace(h.name); err != nil {
		return nil, err
	}
	var steps [][]string
	if s.kind == None {
		h.ip = s.public
		port := fmt.Sprintf("h%d", s.n)
		if err := ipIn(h.name, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", l.inet); err != nil {
			return nil, err
		}
		if err := ipIn(l.inet, "link", "set", port, "master", "br0", "up"); err != nil {
			return nil, err
		}
		steps = [][]string{{"addr", "add", prefixed(h.ip), "dev", "eth0"}, {"link", "set", "eth0", "up"}}
	} else {
		h.ip = s.lanIP(9 + m)
		port := "lan" + strconv.Itoa(m)
		if err := ipIn(h.name, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", s.router); err != nil {
			return nil, err
		}
		if err := ipIn(s.router, "link", "set", port, "master", "br-lan", "up"); err != nil {
			return nil, err
		}
		steps = [][]string{
			{"addr", "add", netip.PrefixFrom(h.ip, s.lan.Bits()).String(), "dev", "eth0"},
			{"link", "set", "eth0", "up"},
			{"route", "add", "default", "via", s.lanIP(1).String()},
		}
	}
	for _, st := range steps {
		if err := ipIn(h.name, st...); err != nil {
			return nil, err
		}
	}
	if s.ports != (portRange{}) {
		// A home behind a carrier: the host's own ports come from the
		// home's share, which its router and the carrier then keep.
		if _, err := execIn(h.name, "sysctl", "-qw", fmt.Sprintf("net.ipv4.ip_local_port_range=%d %d", s.ports.first, s.ports.last)); err != nil {
			return nil, err
		}
	}
	if s.kind == FullCone || s.kind == AddressRestricted {
		if err := s.iptables([]string{"-t", "nat", "-A", "PREROUTING", "-i", "wan0", "-j", "DNAT", "--to-destination", h.ip.String()}); err != nil {
			return nil, err
		}
	}
	if s.ipv6 {
		if err := s.addHostIPv6(h, m); err != nil {
			return nil, err
		}
	}
	s.hosts = append(s.hosts, h)
	return h, nil
}

// FlushConntrack forgets every NAT mapping of the router, as a router
// reboot or a mapping timeout would.
func (s *Site) FlushConntrack() error {
	if s.router == "" {
		return nil
	}
	out, err := execIn(s.router, "conntrack", "-F")
	if err != nil {
		return fmt.Errorf("flush conntrack: %w (%s)", err, out)
	}
	return nil
}

// SetLoss drops each forwarded packet with probability p (0 removes it).
func (s *Site) SetLoss(p float64) error {
	if s.router == "" {
		return fmt.Errorf("set loss: a %s site has no router", s.kind)
	}
	if s.loss != "" {
		if err := s.iptables([]string{"-D", "FORWARD", "-m", "statistic", "--mode", "random", "--probability", s.loss, "-j", "DROP"}); err != nil {
			return err
		}
		s.loss = ""
	}
	if p <= 0 {
		return nil
	}
	s.loss = strconv.FormatFloat(p, 'f', -1, 64)
	return s.iptables([]string{"-I", "FORWARD", "1", "-m", "statistic", "--mode", "random", "--probability", s.loss, "-j", "DROP"})
}

// BlockUDP makes the router drop all UDP to and from the internet, as
// some office and hotel networks do (false lets it through again). TCP
// still passes.
func (s *Site) BlockUDP(block bool) error {
	if s.router == "" {
		return fmt.Errorf("block UDP: a %s site has no router", s.kind)
	}
	op := "-I"
	if !block {
		op = "-D"
	}
	return s.iptables(
		[]string{op, "FORWARD", "-o", "wan0", "-p", "udp", "-j", "DROP"},
		[]string{op, "FORWARD", "-i", "wan0", "-p", "udp", "-j", "DROP"},
	)
}

// ForwardPort makes the router send whatever reaches its public address
// on UDP port to host h, on the same port, and let it through: a port
// forward, as a user (or UPnP) sets one up. Behind a port-restricted NAT,
// which keeps a socket's port, the host's public address becomes
// reachable by anyone: the NAT is easy from then on.
func (s *Site) ForwardPort(h *Host, port int) error {
	if s.router == "" {
		return fmt.Errorf("forward port: a %s site has no router", s.kind)
	}
	p := strconv.Itoa(port)
	return s.iptables(
		[]string{"-t", "nat", "-I", "PREROUTING", "-i", "wan0", "-p", "udp", "--dport", p, "-j", "DNAT", "--to-destination", h.ip.String() + ":" + p},
		[]string{"-I", "FORWARD", "-i", "wan0", "-p", "udp", "-d", h.ip.String(), "--dport", p, "-j", "ACCEPT"},
	)
}

// SetRate limits the router's traffic each way to mbit Mbit/s with a token
// bucket (tc tbf), like a home uplink; 0 removes the limit.
func (s *Site) SetRate(mbit int) error {
	if s.router == "" {
		return fmt.Errorf("set rate: a %s site has no router", s.kind)
	}
	for _, dev := range []string{"wan0", "br-lan"} {
		if mbit <= 0 {
			execIn(s.router, "tc", "qdisc", "del", "dev", dev, "root")
			continue
		}
		// A burst of ~10 ms at the rate keeps tbf accurate at high rates.
		burst := max(mbit*1_000_000/8/100, 32*1024)
		if _, err := execIn(s.router, "tc", "qdisc", "replace", "dev", dev, "root", "tbf",
			"rate", fmt.Sprintf("%dmbit", mbit), "burst", strconv.Itoa(burst), "latency", "50ms"); err != nil {
			return err
		}
	}
	return nil
}

// Exec runs a command in the router namespace.
func (s *Site) Exec(args ...string) ([]byte, error) {
	if s.router == "" {
		return nil, fmt.Errorf("a %s site has no router", s.kind)
	}
	return execIn(s.router, args...)
}

// Name returns the host's namespace name.
func (h *Host) Name() string { return h.name }

// IP returns the host's address on its LAN (for None, its public address).
func (h *Host) IP() netip.Addr { return h.ip }

// Command returns a command that runs inside the host's namespace.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return commandIn(ctx, h.name, name, args...)
}

// Exec runs a command in the host's namespace.
func (h *Host) Exec(args ...string) ([]byte, error) { return execIn(h.name, args...) }

// Do runs fn in the host's namespace: sockets fn opens stay there for
// their whole life, whichever goroutine uses them later.
func (h *Host) Do(fn func() error) error { return inNamespace(h.name, fn) }
