// Package lab builds throwaway network namespaces with real kernel NAT and
// a real STUN server, for integration tests, benchmarks and the demo.
//
// A lab is an "internet" namespace holding a bridge and a coturn STUN
// server on two addresses (which turns on its RFC 5780 support), plus
// sites: a router namespace doing NAT of one kind, with hosts behind it on
// their own LAN. Addresses come from the benchmarking range 198.18.0.0/15:
// the internet segment is 198.18.0.0/24, site n's LAN 198.19.n.0/24; a
// carrier-grade NAT (NewCarrier), whose network holds home routers
// rather than hosts (NewSiteBehind: a double NAT), has 100.64.n.0/24 of
// the shared address space (RFC 6598).
// Every namespace has a unique name, so labs can run side by side, and
// Close removes everything.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
)

// Addresses of the internet segment.
var (
	internetPrefix = netip.MustParsePrefix("198.18.0.0/24")
	stunPrimary    = netip.MustParseAddr("198.18.0.2")
	stunAlternate  = netip.MustParseAddr("198.18.0.3")
)

// STUNPort is the lab STUN server's port; its alternate port is one more.
const STUNPort = 3478

// maxSites bounds the sites of one lab: site n uses 198.18.0.(10+n) and
// 198.19.n.0/24.
const maxSites = 200

// NATKind is the behaviour of a site's router.
type NATKind string

// NAT kinds.
const (
	// None puts the host straight on the internet segment.
	None NATKind = "none"
	// FullCone maps the one host 1:1 (SNAT out, DNAT in): endpoint-
	// independent mapping and filtering. It serves one host.
	FullCone NATKind = "full-cone"
	// AddressRestricted maps the one host 1:1 like FullCone but lets in
	// only addresses the host sent to, from any of their ports: endpoint-
	// independent mapping, address-dependent filtering (a restricted cone).
	// The router remembers (remote address, host port) pairs in an ipset
	// for as long as conntrack keeps a UDP flow.
	AddressRestricted NATKind = "address-restricted"
	// PortRestricted is plain MASQUERADE with unsolicited traffic dropped:
	// endpoint-independent mapping, address-and-port-dependent filtering.
	PortRestricted NATKind = "port-restricted"
	// Symmetric is MASQUERADE --random-fully: a new random port per
	// destination, address-and-port-dependent filtering.
	Symmetric NATKind = "symmetric"
)

// Kinds lists the NAT kinds a site can have, from the easiest to the
// hardest to punch.
var Kinds = []NATKind{None, FullCone, AddressRestricted, PortRestricted, Symmetric}

// Lab is one throwaway network.
type Lab struct {
	prefix string // unique namespace name prefix
	inet   string // the internet namespace
	coturn *coturn
	tb     testing.TB // set by New; AddSite and AddHost fail it

	mu       sync.Mutex // guards following
	sites    []*Site
	dhtNodes int            // DHT nodes started, which numbers their addresses
	ipv6     bool           // the internet namespace routes IPv6 (EnableIPv6)
	undo     []func() error // run in reverse by Close
	closed   bool
}

// Build creates the internet namespace and starts the STUN server. Close
// removes everything; on error Build has already cleaned up.
func Build(ctx context.Context) (_ *Lab, err error) {
	var id [3]byte
	rand.Read(id[:])
	l := &Lab{prefix: "pd" + hex.EncodeToString(id[:])}
	defer func() {
		if err != nil { // l, not the result, which "return nil, err" set
			l.Close()
		}
	}()
	l.inet = l.prefix + "-inet"
	if err := l.addNamespace(l.inet); err != nil {
		return nil, err
	}
	steps := [][]string{
		// The bridge's own address is fixed: left to itself, a bridge
		// takes the lowest address of its ports, so a site added later
		// could change it, and every router would keep sending to the
		// old one what it sends to the servers on the bridge (STUN, TURN,
		// the DHT nodes) until its neighbour entry went stale, about a
		// minute later.
		{"link", "add", "br0", "address", bridgeMAC, "type", "bridge"},
		{"link", "set", "br0", "up"},
		{"addr", "add", prefixed(stunPrimary), "dev", "br0"},
		{"addr", "add", prefixed(stunAlternate), "dev", "br0"},
	}
	for _, s := range steps {
		if err := ipIn(l.inet, s...); err != nil {
			return nil, fmt.Errorf("build internet: %w", err)
		}
	}
	c, err := startCoturn(ctx, l.inet, stunPrimary, stunAlternate)
	if err != nil {
		return nil, err
	}
	l.coturn = c
	l.pushUndo(c.stop)
	return l, nil
}

// bridgeMAC is the internet bridge's own address, locally administered.
const bridgeMAC = "02:00:c6:12:00:01"

// STUN returns the primary STUN server address, for --stun.
func (l *Lab) STUN() string { return netip.AddrPortFrom(stunPrimary, STUNPort).String() }

// STUNAlt returns the STUN server's second address.
func (l *Lab) STUNAlt() string { return netip.AddrPortFrom(stunAlternate, STUNPort).String() }

// Exec runs a command in the internet namespace.
func (l *Lab) Exec(args ...string) ([]byte, error) { return execIn(l.inet, args...) }

// Command prepares a command in the internet namespace, for a server on
// the public side (a relay): it listens on every address there,
// InternetIP among them.
func (l *Lab) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return commandIn(ctx, l.inet, name, args...)
}

// InternetIP is an address of the internet namespace itself (the STUN
// server's), where a server started with Command is reached.
func (l *Lab) InternetIP() netip.Addr { return stunPrimary }

// Close stops the STUN server and deletes every namespace of the lab. It
// keeps going past errors and returns them all.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	undo := l.undo
	l.undo = nil
	l.mu.Unlock()
	var errs []error
	for _, fn := range slices.Backward(undo) {
		errs = append(errs, fn())
	}
	return errors.Join(errs...)
}

func (l *Lab) pushUndo(fn func() error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.undo = append(l.undo, fn)
}

// addNamespace creates a namespace with loopback up and registers its
// deletion.
func (l *Lab) addNamespace(ns string) error {
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns add %s: %v: %s", ns, err, strings.TrimSpace(string(out)))
	}
	l.pushUndo(func() error {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			return fmt.Errorf("ip netns del %s: %v: %s", ns, err, strings.TrimSpace(string(out)))
		}
		return nil
	})
	// No duplicate address detection on the interfaces made later: the
	// lab's addresses are unique, and a link-local address that stays
	// tentative for a second or two drops IPv6 traffic meanwhile.
	if _, err := execIn(ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"); err != nil {
		return err
	}
	return ipIn(ns, "link", "set", "lo", "up")
}

// ipIn runs `ip -n ns args...`.
func ipIn(ns string, args ...string) error {
	out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// execIn runs a command inside namespace ns and returns its combined output.
func execIn(ns string, args ...string) ([]byte, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("in %s: %s: %v: %s", ns, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// commandIn returns a command that runs inside namespace ns. `ip netns
// exec` execs the program, so the command's process is the program itself.
func commandIn(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// prefixed returns ip with the internet segment's prefix length.
func prefixed(ip netip.Addr) string {
	return netip.PrefixFrom(ip, internetPrefix.Bits()).String()
}
