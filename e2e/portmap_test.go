package e2e

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
	"github.com/punchdrop/punchdrop/portmap"
	"github.com/punchdrop/punchdrop/testutil"
)

// punchdrop nat asks the router for a port mapping and says which
// protocol mapped what: behind a router running miniupnpd, each of PCP,
// NAT-PMP and UPnP maps the port on the router's public address; behind
// one that maps nothing, it says what each protocol answered.
func TestNATReportsPortMapping(t *testing.T) {
	l := lab.New(t)
	mapped := l.AddSite(lab.Symmetric)
	host := mapped.AddHost()
	pm, err := mapped.StartPortMapper(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	nat := func(h *lab.Host, protocols string) control.NATInfo {
		t.Helper()
		start := time.Now()
		out, err := h.Command(t.Context(), punchdropBin, "--home", t.TempDir(), "nat", "--json", "--stun", l.STUN(), "--dht-bootstrap", "none", "--map", protocols).Output()
		if err != nil {
			t.Fatalf("punchdrop nat --map %s: %v\nminiupnpd:\n%s", protocols, err, pm.Log())
		}
		var info control.NATInfo
		if err := json.Unmarshal(out, &info); err != nil || info.PortMapping == nil {
			t.Fatalf("punchdrop nat --json: %v in %s", err, out)
		}
		t.Logf("--map %s: %+v in %s", protocols, *info.PortMapping, time.Since(start).Round(time.Millisecond))
		return info
	}
	for _, proto := range []string{portmap.PCP, portmap.NATPMP, portmap.UPnP} {
		m := nat(host, proto).PortMapping
		if m.Protocol != proto || !strings.HasPrefix(m.External, mapped.PublicIP().String()+":") {
			t.Errorf("--map %s: %+v, want a mapping by %s on %s", proto, m, proto, mapped.PublicIP())
		}
	}
	if m := nat(host, "pcp,nat-pmp,upnp").PortMapping; m.Protocol != portmap.PCP {
		t.Errorf("all protocols: %+v, want PCP's, the preferred one", m)
	}
	plain := l.AddSite(lab.PortRestricted).AddHost()
	if m := nat(plain, "pcp,nat-pmp,upnp").PortMapping; m.External != "" || !strings.Contains(m.Error, "pcp") || !strings.Contains(m.Error, "upnp") {
		t.Errorf("no mapper: %+v, want what each protocol answered", m)
	}
}

// startMapped runs an agent in host, whose router maps ports, with
// port_mapping on (or off); it is ready once NAT discovery is done and,
// with port_mapping on, the router mapped its port.
func startMapped(t testing.TB, l *lab.Lab, host *lab.Host, name string, mapping bool) *agentProc {
	t.Helper()
	home := t.TempDir()
	writeConfig(t, home, fmt.Sprintf("port_mapping = %v\n", mapping))
	return startAgentWith(t, l, host, name, home, agentSpec{ready: mappedReady(mapping)})
}

// mappedReady says an agent is ready once NAT discovery is done and, if
// mapping, its port is mapped.
func mappedReady(mapping bool) func(control.IDInfo) bool {
	return func(info control.IDInfo) bool {
		m := info.NAT.PortMapping
		return info.PublicAddr != "" && (!mapping || m != nil && m.External != "")
	}
}

// TestPortMappingMakesSymmetricDirect: alice behind a symmetric NAT and
// bob behind a port-restricted one have no direct path by punching
// alone; when alice's router maps her port (miniupnpd), her connection
// string names the mapped address, bob reaches her there like a full
// cone, both see a direct path, and a file moves intact; by PCP, or by
// UPnP from a router that speaks only that, and even when bob is behind
// a symmetric NAT too. With port_mapping off, that last pairing ends
// unreachable: the mapping is what made the path.
func TestPortMappingMakesSymmetricDirect(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mapping   bool                    // port_mapping
		protocols lab.PortMapperProtocols // what the router answers
		want      string                  // the protocol that maps
		bob       lab.NATKind
	}{
		{"pcp", true, lab.PortMapperProtocols{}, portmap.PCP, lab.PortRestricted},
		{"upnp", true, lab.PortMapperProtocols{NoNATPMP: true}, portmap.UPnP, lab.PortRestricted},
		{"pcp-symmetric", true, lab.PortMapperProtocols{}, portmap.PCP, lab.Symmetric},
		// Symmetric on both sides: a port-restricted bob would meet her
		// by birthday probing (TestPairings), with or without a mapping.
		{"off", false, lab.PortMapperProtocols{}, "", lab.Symmetric},
	} {
		mapping := tc.mapping
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := lab.New(t)
			sym := l.AddSite(lab.Symmetric)
			pm, err := sym.StartPortMapperWith(t.Context(), tc.protocols)
			if err != nil {
				t.Fatal(err)
			}
			a := startMapped(t, l, sym.AddHost(), "alice", mapping)
			b := startAgent(t, l, l.AddSite(tc.bob).AddHost(), "bob")
			info, err := a.id()
			if err != nil {
				t.Fatal(err)
			}
			m := info.NAT.PortMapping
			if !mapping {
				if m != nil {
					t.Fatalf("port_mapping off, yet the agent shows a mapping: %+v", *m)
				}
				if got, err := pm.Mappings(); err != nil || len(got) > 0 {
					t.Fatalf("port_mapping off, yet the router maps %v (%v)", got, err)
				}
			} else {
				if m.Protocol != tc.want || !strings.HasPrefix(m.External, sym.PublicIP().String()+":") || info.PublicAddr != m.External ||
					!strings.Contains(info.ConnectionString, "@"+m.External) {
					t.Fatalf("alice's mapping %+v: want one by %s on %s that her connection string names (%s)", *m, tc.want, sym.PublicIP(), info.ConnectionString)
				}
				t.Logf("alice's port is mapped by %s at %s; STUN sees %s (%s mapping)", m.Protocol, m.External, info.NAT.PublicAddr, info.NAT.Mapping)
			}
			connectPair(t, a, b)
			if !mapping {
				for _, side := range [][2]*agentProc{{a, b}, {b, a}} {
					p := waitPeer(t, side[0], side[1].nodeID(), connectTimeout, "unreachable state", func(p control.PeerInfo) bool {
						return p.State == control.StateOffline
					})
					if !strings.Contains(p.Error, "cannot reach peer directly") {
						t.Fatalf("%s: offline without the plain reason: %+v", side[0].name, p)
					}
				}
				return
			}
			start := time.Now()
			for _, side := range [][2]*agentProc{{a, b}, {b, a}} {
				p := waitPeer(t, side[0], side[1].nodeID(), connectTimeout, "connect", connected)
				if p.Path != "direct" {
					t.Fatalf("%s sees %+v, want a direct path to %s", side[0].name, p, side[1].name)
				}
			}
			if p := b.peer(a.nodeID()); p.Addr != m.External {
				t.Errorf("bob reaches alice at %s, want her mapped address %s", p.Addr, m.External)
			}
			t.Logf("symmetric (mapped) ↔ %s: direct after %s", tc.bob, time.Since(start).Round(time.Millisecond))
			sendIntact(t, a, b, "mapped.bin", 8<<20)
			sendIntact(t, b, a, "back.bin", 1<<20)
		})
	}
}

// TestPortMappingDeletedOnExit: the router forwards the agent's port
// while it runs; turning port_mapping off deletes the mapping at once
// (the agent runs on, no restart), turning it on maps again, an agent
// restarted after a crash takes its mapping over, and a clean exit
// deletes it.
func TestPortMappingDeletedOnExit(t *testing.T) {
	l := lab.New(t)
	site := l.AddSite(lab.Symmetric)
	pm, err := site.StartPortMapper(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	host := site.AddHost()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("miniupnpd:\n%s", pm.Log())
		}
	})
	a := startMapped(t, l, host, "alice", true)
	info, _ := a.id()
	port := strconv.Itoa(info.ListenPort)
	routerMaps := func(what string, within time.Duration, want bool) {
		t.Helper()
		var got []string
		testutil.WaitFor(t, within, what, func() bool {
			got, err = pm.Mappings()
			if err != nil {
				t.Fatal(err)
			}
			has := slices.ContainsFunc(got, func(m string) bool { return m == "udp -> "+host.IP().String()+":"+port })
			return has == want
		})
		t.Logf("%s: the router maps %v", what, got)
	}
	routerMaps("mapped while the agent runs", 0, true)
	// punchdrop nat in the lab host (its STUN probes stay in the lab)
	// shows the mapping the agent keeps rather than asking for another.
	natOut, err := host.Command(t.Context(), punchdropBin, "--home", a.home, "nat", "--stun", l.STUN(), "--dht-bootstrap", "none").Output()
	if err != nil {
		t.Fatalf("punchdrop nat: %v", err)
	}
	if out := string(natOut); !regexp.MustCompile(`port mapping +` + regexp.QuoteMeta(info.NAT.PortMapping.External) + ` by (pcp|nat-pmp|upnp)`).MatchString(out) {
		t.Errorf("punchdrop nat does not show the agent's mapping %s:\n%s", info.NAT.PortMapping.External, out)
	}
	out := a.mustCLI("config", "set", "port_mapping", "false")
	routerMaps("deleted once port_mapping is off", 0, false)
	if now, _ := a.id(); now.NAT.PortMapping != nil || now.ListenPort != info.ListenPort {
		t.Fatalf("after port_mapping off (%s): %+v", strings.TrimSpace(out), now)
	}
	a.mustCLI("config", "set", "port_mapping", "true")
	routerMaps("mapped again once port_mapping is on", 10*time.Second, true)
	// A crash leaves the mapping behind; the agent started again takes it
	// over (same protocol, same address) and deletes it on exit. (Its PCP
	// nonce, derived from its key, is the same as before the crash: a
	// router that holds RFC 6887 11.3 to the letter refuses a renewal
	// with another; miniupnpd 2.3.1 checks the nonce only on deletion,
	// so this lab cannot tell.)
	a.killHard()
	routerMaps("left behind by a crash", 0, true)
	a = startAgentWith(t, l, host, "alice", a.home, agentSpec{ready: mappedReady(true)})
	again, _ := a.id()
	if m := again.NAT.PortMapping; m.Protocol != portmap.PCP || m.External != info.NAT.PortMapping.External {
		t.Fatalf("after a crash and a restart: %+v, want PCP's mapping at %s again", *m, info.NAT.PortMapping.External)
	}
	a.stop() // waits for the agent to exit: it must have deleted the mapping by then
	routerMaps("deleted on clean exit", 0, false)
}
