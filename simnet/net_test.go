package simnet

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"testing/synctest"
	"time"
)

// listen opens a socket on h, closed when the test ends.
func listen(t testing.TB, h *Host, port uint16) *Conn {
	t.Helper()
	c, err := h.Listen(port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t testing.TB, c *Conn, to netip.AddrPort, msg string) {
	t.Helper()
	if _, err := c.WriteTo([]byte(msg), net.UDPAddrFromAddrPort(to)); err != nil {
		t.Fatal(err)
	}
}

// recv returns the next datagram on c and its source, or ok false if none
// arrives within wait.
func recv(t testing.TB, c *Conn, wait time.Duration) (msg string, from netip.AddrPort, ok bool) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 1500)
	n, addr, err := c.ReadFrom(buf)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "", netip.AddrPort{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n]), addr.(*net.UDPAddr).AddrPort(), true
}

const wait = 100 * time.Millisecond // within a synctest bubble, it costs nothing

// world is one host behind a NAT of the kind under test and three
// sockets on the internet: a and a2 share an address, b has another.
type world struct {
	inside    *Conn
	a, a2, b  *Conn
	publicIP  netip.Addr // the NAT's; the host's own for None
	insideIP  netip.Addr
	natOrNone *Site
}

func newWorld(t *testing.T, nat *NAT) world {
	t.Helper()
	n := New(Config{Seed: 1, Logf: t.Logf})
	site := n.AddSite(nat)
	host := site.AddHost()
	servers := n.AddSite(nil)
	ha, hb := servers.AddHost(), servers.AddHost()
	w := world{inside: listen(t, host, 5000), a: listen(t, ha, 7000), a2: listen(t, ha, 7001), b: listen(t, hb, 7000),
		publicIP: site.PublicIP(), insideIP: host.IP(), natOrNone: site}
	if nat == nil {
		w.publicIP = host.IP()
	}
	return w
}

// TestKinds checks each kind's mapping and filtering as RFC 4787 defines
// them: which source the internet sees for each destination, and which
// unsolicited senders get in after the host sent to a.
func TestKinds(t *testing.T) {
	tests := []struct {
		kind Kind
		// sameIP, otherIP: the mapping seen at a2 (same IP as a, other
		// port) and at b (other IP) equals the one seen at a.
		sameIP, otherIP bool
		// in from a2 and b, once the host sent to a only.
		fromSameIP, fromOtherIP bool
	}{
		{None, true, true, true, true},
		{FullCone, true, true, true, true},
		{AddressRestricted, true, true, true, false},
		{PortRestricted, true, true, false, false},
		{Symmetric, false, false, false, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := newWorld(t, tc.kind.NAT())
				send(t, w.inside, w.a.AddrPort(), "first")
				_, seenA, ok := recv(t, w.a, wait)
				if !ok {
					t.Fatal("nothing arrived at a")
				}
				if seenA.Addr() != w.publicIP {
					t.Fatalf("a saw %s, want the public address %s", seenA, w.publicIP)
				}
				if tc.kind != Symmetric && seenA.Port() != 5000 {
					t.Errorf("a saw port %d; the kind keeps the internal port 5000", seenA.Port())
				}
				// Unsolicited senders first: the mapping tests below open the filter.
				for _, in := range []struct {
					c    *Conn
					want bool
				}{{w.a2, tc.fromSameIP}, {w.b, tc.fromOtherIP}, {w.a, true}} {
					send(t, in.c, seenA, "in")
					if _, from, ok := recv(t, w.inside, wait); ok != in.want {
						t.Errorf("from %s: got in %v, want %v", in.c.AddrPort(), ok, in.want)
					} else if ok && from != in.c.AddrPort() {
						t.Errorf("from %s: seen as %s", in.c.AddrPort(), from)
					}
				}
				for _, out := range []struct {
					c    *Conn
					same bool
				}{{w.a2, tc.sameIP}, {w.b, tc.otherIP}} {
					send(t, w.inside, out.c.AddrPort(), "out")
					_, seen, ok := recv(t, out.c, wait)
					if !ok {
						t.Fatalf("nothing arrived at %s", out.c.AddrPort())
					}
					if (seen == seenA) != out.same {
						t.Errorf("%s saw %s, a saw %s: same mapping %v, want %v", out.c.AddrPort(), seen, seenA, seen == seenA, out.same)
					}
				}
			})
		})
	}
}

// TestAddressDependentMapping: a NAT that keeps a mapping per destination
// IP reuses it for another port of that IP.
func TestAddressDependentMapping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, &NAT{Mapping: AddressDependent, Filtering: AddressDependent, RandomPorts: true})
		seen := map[*Conn]netip.AddrPort{}
		for _, c := range []*Conn{w.a, w.a2, w.b} {
			send(t, w.inside, c.AddrPort(), "out")
			_, from, ok := recv(t, c, wait)
			if !ok {
				t.Fatalf("nothing arrived at %s", c.AddrPort())
			}
			seen[c] = from
		}
		if seen[w.a] != seen[w.a2] || seen[w.a] == seen[w.b] {
			t.Fatalf("mappings a %s, a2 %s, b %s; want a = a2 ≠ b", seen[w.a], seen[w.a2], seen[w.b])
		}
	})
}

func TestMappingTimeout(t *testing.T) {
	for _, kind := range []Kind{FullCone, PortRestricted, Symmetric} {
		t.Run(string(kind), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				nat := kind.NAT()
				nat.Timeout = time.Second
				w := newWorld(t, nat)
				send(t, w.inside, w.a.AddrPort(), "out")
				_, mapped, _ := recv(t, w.a, wait)
				time.Sleep(nat.Timeout / 2)
				send(t, w.a, mapped, "in time")
				if _, _, ok := recv(t, w.inside, wait); !ok {
					t.Fatal("the mapping expired early")
				}
				time.Sleep(2 * nat.Timeout)
				send(t, w.a, mapped, "too late")
				if _, _, ok := recv(t, w.inside, wait); ok {
					t.Fatal("the mapping outlived its timeout")
				}
			})
		})
	}
}

func TestFlushForgetsMappings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, FullCone.NAT())
		send(t, w.inside, w.a.AddrPort(), "out")
		_, mapped, _ := recv(t, w.a, wait)
		w.natOrNone.Flush()
		send(t, w.a, mapped, "in")
		if _, _, ok := recv(t, w.inside, wait); ok {
			t.Fatal("a flushed mapping let a packet in")
		}
	})
}

// TestSetFiltering: a port-restricted router told to filter by nothing
// lets in what it dropped before, through the mapping it had.
func TestSetFiltering(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, PortRestricted.NAT())
		send(t, w.inside, w.a.AddrPort(), "out")
		_, mapped, _ := recv(t, w.a, wait)
		send(t, w.b, mapped, "unsolicited")
		if _, _, ok := recv(t, w.inside, wait); ok {
			t.Fatal("a port-restricted NAT let in a stranger")
		}
		w.natOrNone.SetFiltering(EndpointIndependent)
		send(t, w.b, mapped, "welcome")
		if msg, _, ok := recv(t, w.inside, wait); !ok || msg != "welcome" {
			t.Fatalf("after SetFiltering: %q, %v", msg, ok)
		}
	})
}

// TestHairpin: two hosts of one site reach each other through the public
// address only if the router hairpins, and are seen from their mapping.
func TestHairpin(t *testing.T) {
	for _, hairpin := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[hairpin], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := New(Config{Logf: t.Logf})
				site := n.AddSite(&NAT{Hairpin: hairpin})
				c1, c2 := listen(t, site.AddHost(), 5000), listen(t, site.AddHost(), 6000)
				server := listen(t, n.AddSite(nil).AddHost(), 7000)
				send(t, c2, server.AddrPort(), "map me") // c2's public mapping
				_, mapped2, _ := recv(t, server, wait)
				send(t, c1, mapped2, "hairpin")
				_, from, ok := recv(t, c2, wait)
				if ok != hairpin {
					t.Fatalf("delivered through the public address: %v, want %v", ok, hairpin)
				}
				if ok && from != netip.AddrPortFrom(site.PublicIP(), 5000) {
					t.Fatalf("seen from %s, want c1's mapping", from)
				}
				// The LAN works either way, unless it drops everything.
				send(t, c1, c2.AddrPort(), "lan")
				if _, from, ok := recv(t, c2, wait); !ok || from != c1.AddrPort() {
					t.Fatalf("over the LAN: %v from %s", ok, from)
				}
				site.SetLANLink(Link{Delay: 3 * time.Millisecond, Loss: 1})
				send(t, c1, c2.AddrPort(), "lost")
				if _, _, ok := recv(t, c2, wait); ok {
					t.Fatal("a LAN with 100% loss delivered")
				}
				site.SetLANLink(Link{Delay: 3 * time.Millisecond})
				start := time.Now()
				send(t, c1, c2.AddrPort(), "slow")
				if _, _, ok := recv(t, c2, wait); !ok || time.Since(start) != 3*time.Millisecond {
					t.Fatalf("over a slow LAN: %v after %s", ok, time.Since(start))
				}
			})
		})
	}
}

func TestLinkDelayAndLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: 7})
		home, office := n.AddSite(PortRestricted.NAT()), n.AddSite(nil)
		home.SetLink(Link{Delay: 20 * time.Millisecond})
		office.SetLink(Link{Delay: 5 * time.Millisecond})
		in, out := listen(t, home.AddHost(), 5000), listen(t, office.AddHost(), 7000)
		start := time.Now()
		send(t, in, out.AddrPort(), "delayed")
		if _, _, ok := recv(t, out, time.Second); !ok {
			t.Fatal("nothing arrived")
		}
		if took := time.Since(start); took != 25*time.Millisecond {
			t.Fatalf("one way took %s, want the two uplinks' 25ms", took)
		}
		home.SetLink(Link{Loss: 0.3})
		const sent = 2000
		for range sent {
			send(t, in, out.AddrPort(), "maybe")
		}
		got := 0
		for {
			if _, _, ok := recv(t, out, wait); !ok {
				break
			}
			got++
		}
		if lost := float64(sent-got) / sent; lost < 0.25 || lost > 0.35 {
			t.Fatalf("lost %.1f%% at 30%% loss", 100*lost)
		}
	})
}

// TestDelayKeepsOrder: datagrams on one path arrive in the order sent.
func TestDelayKeepsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{})
		site := n.AddSite(nil)
		site.SetLink(Link{Delay: 10 * time.Millisecond})
		a, b := listen(t, site.AddHost(), 1), listen(t, n.AddSite(nil).AddHost(), 2)
		for i := range 100 {
			send(t, a, b.AddrPort(), string(rune('0'+i%10)))
		}
		for i := range 100 {
			msg, _, ok := recv(t, b, time.Second)
			if !ok || msg != string(rune('0'+i%10)) {
				t.Fatalf("datagram %d: %q, %v", i, msg, ok)
			}
		}
	})
}

func TestConnBasics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{})
		h := n.AddSite(nil).AddHost()
		c := listen(t, h, 4000)
		if _, err := h.Listen(4000); !errors.Is(err, ErrAddrInUse) {
			t.Fatalf("second listen on a port: %v", err)
		}
		e1, e2 := listen(t, h, 0), listen(t, h, 0)
		if e1.AddrPort().Port() == e2.AddrPort().Port() || e1.AddrPort().Port() < firstEphemeral {
			t.Fatalf("ephemeral ports %s, %s", e1.AddrPort(), e2.AddrPort())
		}
		if la := c.LocalAddr().(*net.UDPAddr).AddrPort(); la != netip.AddrPortFrom(h.IP(), 4000) {
			t.Fatalf("LocalAddr %s", la)
		}
		// A port nobody listens on swallows datagrams.
		send(t, c, netip.AddrPortFrom(h.IP(), 4001), "nobody")
		done := make(chan error)
		go func() {
			_, _, err := c.ReadFrom(make([]byte, 10))
			done <- err
		}()
		time.Sleep(time.Second)
		c.Close()
		if err := <-done; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
		if _, err := c.WriteTo([]byte("x"), e1.LocalAddr()); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after close: %v", err)
		}
		if _, err := h.Listen(4000); err != nil {
			t.Fatalf("the port is free again after close: %v", err)
		}
	})
}
