package portmap

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// defaultRoute reads the IPv4 default route from the routing table of
// the calling thread's network namespace (/proc/thread-self/net/route:
// /proc/net is the main thread's), and our address towards its gateway
// (the one the kernel would send from).
func defaultRoute() (gw, local netip.Addr, err error) {
	f, err := os.Open("/proc/thread-self/net/route")
	if err != nil {
		return gw, local, fmt.Errorf("find the router: %w", err)
	}
	defer f.Close()
	gw, err = parseDefaultRoute(bufio.NewScanner(f))
	if err != nil {
		return gw, local, err
	}
	local, err = localTowards(gw)
	return gw, local, err
}

// parseDefaultRoute finds the gateway of the default route in the lines
// of /proc/net/route. The kernel prints each address as the number its
// four bytes (in network order) make in the host's byte order.
func parseDefaultRoute(sc *bufio.Scanner) (netip.Addr, error) {
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || f[1] != "00000000" || f[2] == "00000000" {
			continue // the header, another route, or no gateway
		}
		raw, err := hex.DecodeString(f[2])
		if err != nil || len(raw) != 4 {
			continue
		}
		var ip [4]byte
		binary.NativeEndian.PutUint32(ip[:], binary.BigEndian.Uint32(raw))
		return netip.AddrFrom4(ip), nil
	}
	return netip.Addr{}, errors.New("find the router: no default route")
}

// localTowards is the address the kernel sends from towards ip.
func localTowards(ip netip.Addr) (netip.Addr, error) {
	c, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, pcpPort)))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("find our address towards the router: %w", err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}
