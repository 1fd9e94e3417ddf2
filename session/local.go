package session

import (
	"context"
	"maps"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/punchdrop/punchdrop/nat"
)

// Timings of the node's view of itself.
const (
	// natRefreshInterval re-runs NAT classification; mappings and
	// routers change rarely, and a change of local address triggers a
	// run sooner.
	natRefreshInterval = 5 * time.Minute
	// ifaceCheckInterval is how often local addresses are compared to
	// notice a network change (new Wi-Fi, cable plugged in, a new DHCP
	// lease): peers on the LAN must find the node again within seconds
	// (they hear of the change at once, by gossip and LAN announcement),
	// and listing the addresses costs one netlink dump, tens of µs.
	ifaceCheckInterval = 2 * time.Second
	// classifyTimeout bounds one NAT classification.
	classifyTimeout = 10 * time.Second
)

// watchNetwork keeps the NAT report and LAN candidates current.
func (n *Node) watchNetwork(ctx context.Context) {
	n.refreshNAT(ctx)
	refresh := time.NewTicker(natRefreshInterval)
	defer refresh.Stop()
	ifaces := time.NewTicker(ifaceCheckInterval)
	defer ifaces.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-refresh.C:
			n.refreshNAT(ctx)
		case <-ifaces.C:
			n.checkAddresses(ctx)
		}
	}
}

// checkAddresses acts on a change of the node's own addresses: peers hear
// the new LAN candidates at once, before NAT discovery runs again (it
// takes seconds). When an address went away, every session is made again:
// one that left from that address is dead, and the peer would hold it
// until its idle timeout; one that did not costs a handshake, and what
// ran on it resumes at once (closeMoved).
func (n *Node) checkAddresses(ctx context.Context) {
	lan := n.listLAN()
	n.mu.Lock()
	old := n.lan
	n.lan = lan
	n.mu.Unlock()
	if slices.Equal(lan, old) {
		return
	}
	n.log.Info("local addresses changed", "lan", lan, "was", old)
	n.announceCandidates()
	if slices.ContainsFunc(old, func(a netip.AddrPort) bool { return !slices.Contains(lan, a) }) {
		n.mu.Lock()
		sessions := slices.Collect(maps.Keys(n.sessions))
		n.mu.Unlock()
		for _, s := range sessions {
			s.replaced("address changed")
		}
	}
	n.refreshNAT(ctx)
	n.wakeAll()
}

// listLAN lists the node's LAN candidates now (lanCandidates, or the
// tests' own list).
func (n *Node) listLAN() []netip.AddrPort {
	if n.cfg.lanAddrs != nil {
		return n.cfg.lanAddrs()
	}
	return n.lanCandidates()
}

// refreshNAT re-runs STUN discovery and NAT classification.
func (n *Node) refreshNAT(ctx context.Context) {
	lan := n.listLAN()
	n.mu.Lock()
	n.lan = lan
	n.mu.Unlock()
	report, err := n.ClassifyNAT(ctx)
	if err != nil && ctx.Err() == nil {
		n.log.Warn("NAT discovery failed", "err", err)
	}
	n.mu.Lock()
	old := n.report
	n.report = report
	n.mu.Unlock()
	if err == nil {
		n.log.Info("NAT discovered", "public", report.PublicAddr, "mapping", report.Mapping, "filtering", report.Filtering)
	}
	changed := report.PublicAddr != old.PublicAddr || report.Mapping != old.Mapping || report.Filtering != old.Filtering
	if changed && n.cfg.Events.NAT != nil {
		n.cfg.Events.NAT(report)
	}
	n.announceCandidates()
	if changed && err == nil {
		// A punch under way may now know its part in birthday probing. A
		// failed discovery tells it nothing (and connected peers would
		// only probe their better paths again, early).
		n.wakeAll()
	}
}

// LocalCandidates lists the addresses peers may reach this node on: its
// public address (what STUN saw), its LAN addresses, and the extra ones
// its owner set (SetExtraCandidates). Their Source is empty: a peer that
// learns them says where it did.
func (n *Node) LocalCandidates() []Candidate {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.localCandidatesLocked()
}

func (n *Node) localCandidatesLocked() []Candidate {
	var out []Candidate
	if pub := n.report.PublicAddr; pub.IsValid() {
		out = append(out, Candidate{Addr: pub, Kind: PathDirect})
	}
	for _, a := range n.lan {
		switch {
		case a == n.report.PublicAddr:
		case isPublicHostAddr(a.Addr()):
			out = append(out, Candidate{Addr: a, Kind: PathDirect})
		default:
			out = append(out, Candidate{Addr: a, Kind: PathLAN})
		}
	}
	for _, provider := range slices.Sorted(maps.Keys(n.extra)) {
		out = append(out, n.extra[provider]...)
	}
	return out
}

// SetExtraCandidates sets the own candidates one provider (say "relay"
// or "portmap") offers, replacing what it offered before; nil withdraws
// them. Peers hear of the change through the LocalCandidates event's
// owner, and new connection strings carry them.
func (n *Node) SetExtraCandidates(provider string, cands []Candidate) {
	n.mu.Lock()
	if n.extra == nil {
		n.extra = map[string][]Candidate{}
	}
	if len(cands) == 0 {
		delete(n.extra, provider)
	} else {
		n.extra[provider] = slices.Clone(cands)
	}
	n.mu.Unlock()
	n.announceCandidates()
}

// announceCandidates tells connected peers (gossip.go) and the owner the
// node's own candidates and NAT kind, if either changed since it last
// did.
func (n *Node) announceCandidates() {
	n.mu.Lock()
	cands, kind := n.localCandidatesLocked(), n.natKindLocked()
	changed := !slices.Equal(cands, n.announced) || kind != n.announcedNAT
	var nw news
	if changed {
		n.announced, n.announcedNAT = cands, kind
		nw = n.newsLocked()
	}
	n.mu.Unlock()
	if !changed {
		return
	}
	n.tellAllCandidates(nw)
	if n.cfg.Events.LocalCandidates != nil {
		n.cfg.Events.LocalCandidates(cands)
	}
}

// news is what the node tells a peer over a new session.
func (n *Node) news() news {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.newsLocked()
}

// newsLocked reads the node's candidates and NAT kind, and numbers them
// above the news read before.
func (n *Node) newsLocked() news {
	n.newsSeq++
	return news{cands: n.localCandidatesLocked(), nat: n.natKindLocked(), seq: n.newsSeq}
}

// OwnNAT says what peers need to know of the node's NAT (NATKind), as its
// connection string (nat=hard) and candidates frames tell it.
func (n *Node) OwnNAT() NATKind {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.natKindLocked()
}

// natKindLocked is the node's NAT kind: hard when the public address
// peers are given is the one STUN saw, of a NAT that maps a new port per
// destination; easy when it is a port the router maps (it reaches the
// node from anywhere) or STUN's of a NAT that keeps its port (or of no
// NAT); unknown without a public address or with a mapping not measured.
func (n *Node) natKindLocked() NATKind {
	pub := n.publicForPeersLocked()
	switch m := n.report.Mapping; {
	case !pub.IsValid():
		return NATUnknown
	case pub != n.report.PublicAddr:
		return NATEasy
	case m == nat.AddressDependent || m == nat.AddressAndPortDependent:
		return NATHard
	case m == nat.EndpointIndependent:
		return NATEasy
	}
	return NATUnknown
}

// ClassifyNAT runs STUN against the configured servers on the node's socket.
func (n *Node) ClassifyNAT(ctx context.Context) (nat.Report, error) {
	ctx, cancel := context.WithTimeout(ctx, classifyTimeout)
	defer cancel()
	return nat.Classify(ctx, n.stun, n.localAddr(), n.cfg.STUNServers)
}

// NAT returns the latest NAT report.
func (n *Node) NAT() nat.Report {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.report
}

// ConnString returns the node's current connection string: with its
// relayed addresses while it holds relay allocations, and its mapped
// port as the public address where STUN's is of no use to peers
// (publicForPeersLocked).
func (n *Node) ConnString() ConnString {
	n.mu.Lock()
	defer n.mu.Unlock()
	cs := ConnString{ID: n.ID(), Public: n.publicForPeersLocked(), Name: n.cfg.Name}
	// Hard: the public address is the one STUN saw, of a NAT that maps a
	// new port per destination (a mapped port, when there is one, is
	// named instead, and reaches the node from anywhere).
	cs.HardNAT = n.natKindLocked() == NATHard
	for _, a := range n.lan {
		// A host with no NAT sees its public address among its own; it is
		// not a LAN candidate, and a path to it is direct. So is a global
		// IPv6 address.
		switch {
		case a == cs.Public || a == n.report.PublicAddr:
		case isPublicHostAddr(a.Addr()):
			if !cs.Public.IsValid() {
				cs.Public = a
			} else if len(cs.Direct) < MaxDirectCandidates {
				cs.Direct = append(cs.Direct, a)
			}
		default:
			cs.LAN = append(cs.LAN, a)
		}
	}
	for _, c := range n.relayCandidatesLocked() {
		if len(cs.Relay) < MaxRelayCandidates {
			cs.Relay = append(cs.Relay, c.Addr)
		}
	}
	return cs
}

// SetName changes the display name sent to peers from now on.
func (n *Node) SetName(name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cfg.Name = name
}

func (n *Node) name() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cfg.Name
}

// lanCandidates lists the node's host addresses: the socket's own
// address if it is bound to one, else this host's unicast addresses with
// the socket's port, IPv4 first. IPv6 ones are listed only on a socket
// that speaks IPv6 (ListenUDP's dual-stack [::]); link-local ones never
// (their zone names an interface of this host, meaningless to a peer).
// Global IPv6 addresses among them are the node's public ones
// (isPublicHostAddr), the rest are for peers on the same LAN.
func (n *Node) lanCandidates() []netip.AddrPort {
	local := n.localAddr()
	if local.Addr().IsValid() && !local.Addr().IsUnspecified() {
		return []netip.AddrPort{local}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []netip.Addr
	for _, a := range addrs {
		if prefix, err := netip.ParsePrefix(a.String()); err == nil {
			ips = append(ips, prefix.Addr())
		}
	}
	withIPv6 := local.Addr().Is6()
	var preferred netip.Addr
	if withIPv6 {
		preferred = preferredIPv6Source()
	}
	return hostCandidates(ips, withIPv6, preferred, local.Port())
}

// preferredIPv6Source is the address the kernel sends from to a global
// IPv6 destination (a route lookup: nothing is sent), or none without an
// IPv6 route. With privacy extensions (RFC 8981, on by default on most
// desktops) that is the newest temporary address, and it must be among
// the candidates: the node's probes leave from it, so the node's
// stateful firewall opens for the peer's probes to it, not to the
// host's other addresses.
func preferredIPv6Source() netip.Addr {
	c, err := net.DialUDP("udp6", nil, &net.UDPAddr{IP: net.ParseIP("2000::1"), Port: 9})
	if err != nil {
		return netip.Addr{}
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr()
}

// hostCandidates picks, from a host's interface addresses, those a peer
// may reach port on: unicast, not loopback or link-local, IPv6 ones only
// if withIPv6; IPv4 first, then IPv6 global (preferred, the address the
// host sends from, first), then IPv6 unique local, at most
// MaxLANCandidates, with at most maxIPv6PerKind of each IPv6 kind (a
// host with privacy addresses holds several global ones, which would
// crowd out the rest).
func hostCandidates(ips []netip.Addr, withIPv6 bool, preferred netip.Addr, port uint16) []netip.AddrPort {
	if i := slices.Index(ips, preferred); preferred.IsValid() && i > 0 {
		ips = slices.Concat([]netip.Addr{preferred}, slices.Delete(slices.Clone(ips), i, i+1))
	}
	var v4, global6, local6 []netip.AddrPort
	for _, ip := range ips {
		ip = ip.Unmap()
		switch {
		case ip.Zone() != "" || !ip.IsGlobalUnicast():
			// loopback, link-local, multicast, unspecified
		case ip.Is4():
			v4 = append(v4, netip.AddrPortFrom(ip, port))
		case !withIPv6:
		case isPublicHostAddr(ip):
			if len(global6) < maxIPv6PerKind {
				global6 = append(global6, netip.AddrPortFrom(ip, port))
			}
		default:
			if len(local6) < maxIPv6PerKind {
				local6 = append(local6, netip.AddrPortFrom(ip, port))
			}
		}
	}
	out := slices.Concat(v4, global6, local6)
	if len(out) > MaxLANCandidates {
		out = out[:MaxLANCandidates]
	}
	return out
}

// PublicIPv6Addrs lists this host's global IPv6 addresses: its public
// ones, for a dual-stack socket (ListenUDP) reached with no NAT.
func PublicIPv6Addrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if prefix, err := netip.ParsePrefix(a.String()); err == nil && isPublicHostAddr(prefix.Addr()) && len(out) < maxIPv6PerKind {
			out = append(out, prefix.Addr())
		}
	}
	return out
}

// maxIPv6PerKind bounds the global and the unique-local IPv6 addresses a
// node lists.
const maxIPv6PerKind = 2

// isPublicHostAddr reports whether ip, an address of this host, is
// public: a global IPv6 address (not unique-local, fc00::/7) reaches the
// host with no NAT in between, so it is a candidate of kind direct, and
// a peer reaches it by sending to it at once (a stateful firewall in
// front of the host lets the answer to our own probe in).
func isPublicHostAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.Is6() && ip.IsGlobalUnicast() && !ip.IsPrivate() && ip.Zone() == ""
}
