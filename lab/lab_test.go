package lab

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// mappedAddress sends a binding request from inside host to the lab's STUN
// server and returns the XOR-MAPPED-ADDRESS of the answer.
func mappedAddress(t *testing.T, l *Lab, h *Host) netip.AddrPort {
	t.Helper()
	conn, err := ListenUDPIn(h.Name(), netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return stunFrom(t, l, conn)
}

// xorMapped finds an IPv4 XOR-MAPPED-ADDRESS (0x0020) in a STUN answer.
func xorMapped(b, req []byte) (netip.AddrPort, bool) {
	if len(b) < 20 || string(b[8:20]) != string(req[8:20]) {
		return netip.AddrPort{}, false
	}
	for i := 20; i+4 <= len(b); {
		typ, n := int(b[i])<<8|int(b[i+1]), int(b[i+2])<<8|int(b[i+3])
		if typ == 0x0020 && n == 8 && i+12 <= len(b) {
			port := uint16(b[i+6])<<8 | uint16(b[i+7]) ^ 0x2112
			ip := [4]byte{b[i+8] ^ 0x21, b[i+9] ^ 0x12, b[i+10] ^ 0xA4, b[i+11] ^ 0x42}
			return netip.AddrPortFrom(netip.AddrFrom4(ip), port), true
		}
		i += 4 + (n+3)&^3
	}
	return netip.AddrPort{}, false
}

func TestEachKindMapsToItsPublicAddress(t *testing.T) {
	l := New(t)
	for _, kind := range Kinds {
		site := l.AddSite(kind)
		h := site.AddHost()
		got := mappedAddress(t, l, h)
		if got.Addr() != site.PublicIP() {
			t.Errorf("%s: STUN saw %s, want the site's public address %s", kind, got, site.PublicIP())
		}
		if kind == None && h.IP() != site.PublicIP() {
			t.Errorf("none: host %s is not on the internet segment", h.IP())
		}
	}
}

// TestFiltering sends an unsolicited datagram from the internet namespace
// to each router's public address: only a full cone lets it through.
func TestFiltering(t *testing.T) {
	l := New(t)
	for _, tc := range []struct {
		kind     NATKind
		delivers bool
	}{{FullCone, true}, {AddressRestricted, false}, {PortRestricted, false}, {Symmetric, false}} {
		site := l.AddSite(tc.kind)
		h := site.AddHost()
		in, err := ListenUDPIn(h.Name(), netip.MustParseAddrPort("0.0.0.0:40000"))
		if err != nil {
			t.Fatal(err)
		}
		out, err := ListenUDPIn(l.inet, netip.AddrPort{})
		if err != nil {
			t.Fatal(err)
		}
		out.WriteToUDPAddrPort([]byte("knock"), netip.AddrPortFrom(site.PublicIP(), 40000))
		in.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 16)
		n, _, err := in.ReadFromUDPAddrPort(buf)
		if got := err == nil && string(buf[:n]) == "knock"; got != tc.delivers {
			t.Errorf("%s: unsolicited datagram delivered = %v, want %v", tc.kind, got, tc.delivers)
		}
		in.Close()
		out.Close()
	}
}

// TestForwardPort: a port-restricted router drops an unsolicited
// datagram to its public address until the port is forwarded to the
// host.
func TestForwardPort(t *testing.T) {
	l := New(t)
	site := l.AddSite(PortRestricted)
	h := site.AddHost()
	in, err := ListenUDPIn(h.Name(), netip.MustParseAddrPort("0.0.0.0:40000"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := ListenUDPIn(l.inet, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	knock := func() bool {
		out.WriteToUDPAddrPort([]byte("knock"), netip.AddrPortFrom(site.PublicIP(), 40000))
		in.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 16)
		n, _, err := in.ReadFromUDPAddrPort(buf)
		return err == nil && string(buf[:n]) == "knock"
	}
	if knock() {
		t.Fatal("delivered before the port was forwarded")
	}
	if err := site.ForwardPort(h, 40000); err != nil {
		t.Fatal(err)
	}
	if !knock() {
		t.Fatal("not delivered through the forwarded port")
	}
}

func TestSymmetricMapsPerDestination(t *testing.T) {
	l := New(t)
	h := l.AddSite(Symmetric).AddHost()
	conn, err := ListenUDPIn(h.Name(), netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ports := map[uint16]bool{}
	buf := make([]byte, 1500)
	for _, server := range []string{l.STUN(), l.STUNAlt()} {
		req := bindingRequest()
		for range 10 {
			conn.WriteToUDPAddrPort(req, netip.MustParseAddrPort(server))
			conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, _, err := conn.ReadFromUDPAddrPort(buf)
			if a, ok := xorMapped(buf[:max(n, 0)], req); err == nil && ok {
				ports[a.Port()] = true
				break
			}
		}
	}
	if len(ports) != 2 {
		t.Fatalf("one socket got mapped ports %v for two servers; a symmetric NAT gives two", ports)
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	Require(t)
	var prefix string
	t.Run("lab", func(t *testing.T) {
		l := New(t)
		prefix = l.prefix
		l.AddSite(PortRestricted).AddHost()
		l.AddSite(None).AddHost()
	})
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), prefix) {
		t.Fatalf("namespaces of %s left behind:\n%s", prefix, out)
	}
	if out, _ := exec.Command("pgrep", "-f", "turnserver.*"+prefix).Output(); len(out) > 0 {
		t.Fatalf("coturn left running: %s", out)
	}
}

func TestTwoHostsBehindOneRouter(t *testing.T) {
	l := New(t)
	site := l.AddSite(PortRestricted)
	a, b := site.AddHost(), site.AddHost()
	if a.IP() == b.IP() || mappedAddress(t, l, a).Addr() != site.PublicIP() || mappedAddress(t, l, b).Addr() != site.PublicIP() {
		t.Fatalf("hosts %s and %s behind one router", a.IP(), b.IP())
	}
	in, err := ListenUDPIn(b.Name(), netip.AddrPortFrom(b.IP(), 40000))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := ListenUDPIn(a.Name(), netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	out.WriteToUDPAddrPort([]byte("hi"), netip.AddrPortFrom(b.IP(), 40000))
	in.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 8)
	n, from, err := in.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "hi" || from.Addr() != a.IP() {
		t.Fatalf("LAN neighbours cannot reach each other directly: %v from %s", err, from)
	}
}

// TestBridgeKeepsItsAddress: the servers on the internet bridge (STUN,
// TURN, the DHT nodes) keep their link address while sites are added, so
// a router that talked to them before goes on reaching them at once. A
// bridge left to pick its own took the lowest address of its ports, and
// a later site could change it: the routers before it then sent to the
// old address, lost, for about a minute.
func TestBridgeKeepsItsAddress(t *testing.T) {
	l := New(t)
	first := l.AddSite(PortRestricted)
	h := first.AddHost()
	mappedAddress(t, l, h) // the router learns the bridge's address
	for range 4 {
		l.AddSite(PortRestricted).AddHost()
	}
	link, err := execIn(l.inet, "cat", "/sys/class/net/br0/address")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(link)); got != bridgeMAC {
		t.Fatalf("the bridge's address is %s after sites joined, want %s", got, bridgeMAC)
	}
	neigh, err := first.Exec("ip", "neigh", "show", stunPrimary.String())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(neigh), bridgeMAC) {
		t.Fatalf("the first router reaches the STUN server at %q, not the bridge's %s", neigh, bridgeMAC)
	}
	mappedAddress(t, l, h)
}

// knock sends a datagram from a new socket in namespace ns to dst and
// says whether in received it.
func knock(t *testing.T, ns string, dst netip.AddrPort, in *net.UDPConn) bool {
	t.Helper()
	out, err := ListenUDPIn(ns, netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	return knockFrom(out, dst, in)
}

func knockFrom(out *net.UDPConn, dst netip.AddrPort, in *net.UDPConn) bool {
	out.WriteToUDPAddrPort([]byte("knock"), dst)
	in.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 16)
	n, _, err := in.ReadFromUDPAddrPort(buf)
	return err == nil && string(buf[:n]) == "knock"
}

// TestAddressRestrictedFilters: once the host sent to an address, that
// address gets in from any of its ports, to the port the host sent from
// only; other addresses stay out.
func TestAddressRestrictedFilters(t *testing.T) {
	l := New(t)
	site := l.AddSite(AddressRestricted)
	h := site.AddHost()
	in, err := ListenUDPIn(h.Name(), netip.MustParseAddrPort("0.0.0.0:40000"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	public := netip.AddrPortFrom(site.PublicIP(), 40000)
	if knock(t, l.inet, public, in) {
		t.Fatal("an address the host never sent to got in")
	}
	// The host writes to the STUN server's primary address (nothing
	// answers on that port).
	in.WriteToUDPAddrPort([]byte("out"), netip.AddrPortFrom(stunPrimary, 9))
	fromPrimary, err := ListenUDPIn(l.inet, netip.AddrPortFrom(stunPrimary, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer fromPrimary.Close()
	if !knockFrom(fromPrimary, public, in) {
		t.Fatal("the address the host sent to cannot get in from another of its ports")
	}
	fromAlternate, err := ListenUDPIn(l.inet, netip.AddrPortFrom(stunAlternate, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer fromAlternate.Close()
	if knockFrom(fromAlternate, public, in) {
		t.Fatal("another address got in")
	}
	if got := mappedAddress(t, l, h); got.Addr() != site.PublicIP() {
		t.Fatalf("STUN saw %s, want %s", got, site.PublicIP())
	}
}

// TestCarrier: homes behind a carrier-grade NAT are seen at the carrier's
// public address, with their ports kept; two homes reach each other
// through it (after each sent to the other, as punching does) only when
// the carrier hairpins.
func TestCarrier(t *testing.T) {
	for _, hairpin := range []bool{false, true} {
		t.Run(fmt.Sprintf("hairpin=%v", hairpin), func(t *testing.T) {
			t.Parallel()
			l := New(t)
			c := l.AddCarrier(hairpin)
			homeA, homeB := l.AddSiteBehind(c, PortRestricted), l.AddSiteBehind(c, PortRestricted)
			if !c.lan.Contains(homeA.WANIP()) || homeA.PublicIP() != c.PublicIP() {
				t.Fatalf("home's WAN %s, public %s; carrier %s on %s", homeA.WANIP(), homeA.PublicIP(), c.PublicIP(), c.lan)
			}
			a, b := homeA.AddHost(), homeB.AddHost()
			conns := make([]*net.UDPConn, 2)
			publics := make([]netip.AddrPort, 2)
			for i, h := range []*Host{a, b} {
				conn, err := ListenUDPIn(h.Name(), netip.AddrPort{})
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conns[i] = conn
				local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
				publics[i] = stunFrom(t, l, conn)
				if publics[i] != netip.AddrPortFrom(c.PublicIP(), local.Port()) {
					t.Fatalf("host %s:%d seen as %s, want the carrier's address with the port kept", h.IP(), local.Port(), publics[i])
				}
			}
			// Punch: each sends to the other's public address, then
			// both try again.
			conns[0].WriteToUDPAddrPort([]byte("open"), publics[1])
			conns[1].WriteToUDPAddrPort([]byte("open"), publics[0])
			got := 0
			for range 3 {
				if knockFrom(conns[0], publics[1], conns[1]) && knockFrom(conns[1], publics[0], conns[0]) {
					got++
				}
			}
			if (got > 0) != hairpin {
				t.Fatalf("homes reached each other through the carrier %d of 3 times, hairpin %v", got, hairpin)
			}
		})
	}
}

// stunFrom asks the lab's STUN server for conn's mapped address.
func stunFrom(t *testing.T, l *Lab, conn *net.UDPConn) netip.AddrPort {
	t.Helper()
	req := bindingRequest()
	buf := make([]byte, 1500)
	for range 20 {
		conn.WriteToUDPAddrPort(req, netip.MustParseAddrPort(l.STUN()))
		conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			continue
		}
		if a, ok := xorMapped(buf[:n], req); ok {
			return a
		}
	}
	t.Fatal("no STUN answer")
	return netip.AddrPort{}
}

// TestIPv6StatefulFirewall: behind IPv6 firewalls with no NAT, a host is
// seen at its own address; an unsolicited datagram does not get in; two
// hosts that send to each other at once (the first one's datagram is
// dropped by the other's firewall, but opens its own) then reach each
// other both ways. The sites' IPv4 stays port-restricted NAT.
func TestIPv6StatefulFirewall(t *testing.T) {
	l := New(t)
	hosts := make([]*Host, 3)
	for i, kind := range []NATKind{PortRestricted, PortRestricted, None} {
		site := l.AddSite(kind)
		if err := site.EnableIPv6(); err != nil {
			t.Fatal(err)
		}
		hosts[i] = site.AddHost()
		if !hosts[i].IP6().Is6() || !internet6.Overlaps(netip.PrefixFrom(hosts[i].IP6(), 32)) {
			t.Fatalf("%s host has IPv6 address %s", kind, hosts[i].IP6())
		}
	}
	const port = 40000
	conns := make([]*net.UDPConn, 3)
	for i, h := range hosts {
		c, err := ListenUDPIn(h.Name(), netip.AddrPortFrom(h.IP6(), port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	at := func(i int) netip.AddrPort { return netip.AddrPortFrom(hosts[i].IP6(), port) }
	// The host on the internet reaches nobody unasked, but is reached.
	if knockFrom(conns[2], at(0), conns[0]) {
		t.Fatal("an unsolicited datagram got through the IPv6 firewall")
	}
	if !knockFrom(conns[0], at(2), conns[2]) {
		t.Fatal("a host behind a firewall cannot reach a host on the internet")
	}
	// Simultaneous open between the two firewalled hosts.
	if knockFrom(conns[0], at(1), conns[1]) {
		t.Fatal("the first datagram got through the other side's firewall unasked")
	}
	if !knockFrom(conns[1], at(0), conns[0]) || !knockFrom(conns[0], at(1), conns[1]) {
		t.Fatal("two hosts behind IPv6 firewalls did not reach each other after both sent")
	}
	// The IPv4 side is still NAT: STUN sees the router's address.
	if got := mappedAddress(t, l, hosts[0]); got.Addr() != l.sites[0].PublicIP() {
		t.Fatalf("IPv4 seen as %s", got)
	}
}
