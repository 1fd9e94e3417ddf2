package e2e

import (
	"encoding/json"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
)

// TestIPv6SimultaneousOpen: two dual-stack hosts whose IPv4 NATs are
// both symmetric (no direct IPv4 path, and no relay) and whose IPv6
// firewalls drop what nobody asked for. Each one's connection string,
// `id` and `nat` name its IPv6 address; they connect over IPv6 by
// sending to each other at once, `peers` shows the IPv6 address, and a
// file arrives intact.
func TestIPv6SimultaneousOpen(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	alice := startAgent(t, l, l.AddDualStackSite(lab.Symmetric).AddHost(), "alice")
	bob := startAgent(t, l, l.AddDualStackSite(lab.Symmetric).AddHost(), "bob")

	for _, a := range []*agentProc{alice, bob} {
		v6 := a.host.IP6().String()
		info, err := a.id()
		if err != nil {
			t.Fatal(err)
		}
		// Both families among the public addresses, IPv4 (STUN's) first.
		if len(info.PublicAddrs) != 2 || info.PublicAddrs[0] != info.PublicAddr ||
			!strings.HasPrefix(info.PublicAddrs[1], "["+v6+"]:") || !strings.Contains(info.ConnectionString, "["+v6+"]:") {
			t.Fatalf("%s: public addresses %v (public %s), string %s; want its IPv4 one and [%s]", a.name, info.PublicAddrs, info.PublicAddr, info.ConnectionString, v6)
		}
		if len(info.NAT.IPv6) != 1 || !strings.HasPrefix(info.NAT.IPv6[0], "["+v6+"]:") {
			t.Fatalf("%s: the agent's NAT info says IPv6 %v, want [%s]", a.name, info.NAT.IPv6, v6)
		}
		if info.NAT.Mapping != "address-and-port-dependent" {
			t.Fatalf("%s: IPv4 mapping %q on the dual-stack socket, want address-and-port-dependent", a.name, info.NAT.Mapping)
		}
		// The one-shot check, on a fresh dual-stack socket of its own.
		out, err := a.host.Command(t.Context(), punchdropBin, "--home", t.TempDir(), "nat", "--json", "--stun", l.STUN(), "--map", "none", "--dht-bootstrap", "none").Output()
		var nat control.NATInfo
		if err == nil {
			err = json.Unmarshal(out, &nat)
		}
		if err != nil || !slices.Contains(nat.IPv6, v6) || nat.PublicAddr == "" || nat.Mapping != "address-and-port-dependent" {
			t.Fatalf("%s: punchdrop nat --json: %v\n%s", a.name, err, out)
		}
		out, err = a.host.Command(t.Context(), punchdropBin, "--home", t.TempDir(), "nat", "--stun", l.STUN(), "--map", "none", "--dht-bootstrap", "none").Output()
		if err != nil || !strings.Contains(string(out), "ipv6            "+v6+": public, no NAT") {
			t.Fatalf("%s: punchdrop nat: %v\n%s", a.name, err, out)
		}
		// id prints the string on stdout, the rest on stderr.
		out, err = a.host.Command(t.Context(), punchdropBin, "--home", a.home, "id").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "public addresses: "+info.PublicAddr+", ["+v6+"]:") || !strings.Contains(string(out), "ipv6            ["+v6+"]:") {
			t.Fatalf("%s: punchdrop id: %v\n%s", a.name, err, out)
		}
	}

	start := time.Now()
	connectPair(t, alice, bob)
	for _, side := range [][2]*agentProc{{alice, bob}, {bob, alice}} {
		p := waitPeer(t, side[0], side[1].nodeID(), connectTimeout, "connect over IPv6", connected)
		if want := "[" + side[1].host.IP6().String() + "]:"; p.Path != "direct" || !strings.HasPrefix(p.Addr, want) {
			t.Fatalf("%s sees %+v, want a direct path to %s…", side[0].name, p, want)
		}
		if out := side[0].mustCLI("peers"); !strings.Contains(out, "["+side[1].host.IP6().String()+"]:") {
			t.Fatalf("%s: punchdrop peers does not show the IPv6 address:\n%s", side[0].name, out)
		}
	}
	took := time.Since(start)

	const size = 32 << 20
	src := randomFile(t, filepath.Join(t.TempDir(), "over-ipv6.bin"), size, 6)
	sent := time.Now()
	if out, err := alice.cli("send", "--wait", "bob", src); err != nil {
		t.Fatalf("send --wait: %v\n%s", err, out)
	}
	elapsed := time.Since(sent)
	sameFile(t, src, filepath.Join(bob.downloads(), "over-ipv6.bin"))
	t.Logf("IPv6, symmetric IPv4 NATs on both sides: connected (both say so, polled) %s after the connects began; %d MiB sent in %s (%.0f MiB/s)",
		took.Round(time.Millisecond), size>>20, elapsed.Round(time.Millisecond), float64(size>>20)/elapsed.Seconds())
}

// TestIPv6DeprecatedAddresses: alice's host holds, besides its address,
// two newer deprecated ones (old privacy addresses, listed first by
// Linux), as a desktop with IPv6 privacy extensions does. Her probes
// leave from the address the kernel prefers, so that one must be among
// her candidates: her firewall lets in only the peer's probes to it.
// She still connects to bob over IPv6, to that address.
func TestIPv6DeprecatedAddresses(t *testing.T) {
	t.Parallel()
	l := lab.New(t)
	aliceHost := l.AddDualStackSite(lab.Symmetric).AddHost()
	preferred := aliceHost.IP6()
	for i := range 2 {
		old := preferred.As16()
		old[13] = byte(1 + i)
		p := netip.PrefixFrom(netip.AddrFrom16(old), 64).String()
		if out, err := aliceHost.Exec("ip", "-6", "addr", "add", p, "dev", "eth0", "nodad", "preferred_lft", "0"); err != nil {
			t.Fatalf("add deprecated address %s: %v %s", p, err, out)
		}
	}
	alice := startAgent(t, l, aliceHost, "alice")
	bob := startAgent(t, l, l.AddDualStackSite(lab.Symmetric).AddHost(), "bob")
	connectPair(t, alice, bob)
	p := waitPeer(t, bob, alice.nodeID(), connectTimeout, "connect over IPv6", connected)
	if want := "[" + preferred.String() + "]:"; !strings.HasPrefix(p.Addr, want) {
		t.Fatalf("bob's session with alice runs to %s, want her preferred address %s…", p.Addr, want)
	}
	exchangeMessages(t, alice, bob, "deprecated addresses")
}
