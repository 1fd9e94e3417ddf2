package session

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func mustID(t testing.TB, seed byte) NodeID {
	t.Helper()
	var id NodeID
	for i := range id {
		id[i] = seed + byte(i)
	}
	return id
}

func TestNodeIDParseIsLenient(t *testing.T) {
	id := mustID(t, 7)
	s := id.String()
	if len(s) != 52 || strings.ToUpper(s) != s {
		t.Fatalf("String() = %q, want 52 upper-case characters", s)
	}
	grouped := strings.ToLower(s[:10] + "-" + s[10:20] + " " + s[20:])
	for _, in := range []string{s, strings.ToLower(s), grouped, " " + s + "\t"} {
		got, err := ParseNodeID(in)
		if err != nil || got != id {
			t.Errorf("ParseNodeID(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "abc", s[:51], s + "A", strings.Repeat("1", 52)} {
		if _, err := ParseNodeID(in); !errors.Is(err, ErrBadNodeID) {
			t.Errorf("ParseNodeID(%q) = %v, want ErrBadNodeID", in, err)
		}
	}
	if id.Short() != s[:ShortIDLen] {
		t.Errorf("Short() = %q", id.Short())
	}
}

func TestConnStringRoundTrip(t *testing.T) {
	id := mustID(t, 1)
	tests := []ConnString{
		{ID: id, Public: netip.MustParseAddrPort("203.0.113.7:41641"), LAN: []netip.AddrPort{netip.MustParseAddrPort("192.168.1.20:41641")}, Name: "alice"},
		{ID: id, Public: netip.MustParseAddrPort("203.0.113.7:1")},
		{ID: id, LAN: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:5"), netip.MustParseAddrPort("10.0.1.2:5")}},
		{ID: id, Public: netip.MustParseAddrPort("[2001:db8::1]:443"), Name: "Zoë & co?=x"},
		{ID: id, Public: netip.MustParseAddrPort("203.0.113.7:1"), Relay: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.4:50123")}},
		{ID: id, Relay: []netip.AddrPort{netip.MustParseAddrPort("198.51.100.4:50123"), netip.MustParseAddrPort("198.51.100.5:3478")}, Name: "behind a firewall"},
		{ID: id, Public: netip.MustParseAddrPort("203.0.113.7:40000"), HardNAT: true, Name: "symmetric"},
		// Dual stack: the global IPv6 addresses follow the public IPv4 one.
		{ID: id, Public: netip.MustParseAddrPort("203.0.113.7:41641"), Direct: []netip.AddrPort{netip.MustParseAddrPort("[2001:db8:1::7]:41641"), netip.MustParseAddrPort("[2001:db8:1::8]:41641")},
			LAN: []netip.AddrPort{netip.MustParseAddrPort("192.168.1.20:41641"), netip.MustParseAddrPort("[fd00::20]:41641")}, HardNAT: true},
		{ID: id, Public: netip.MustParseAddrPort("[2001:db8::1]:443"), Relay: []netip.AddrPort{netip.MustParseAddrPort("[2001:db8:2::4]:3478")}},
	}
	for _, want := range tests {
		s := want.String()
		got, err := ParseConnString(s)
		if err != nil {
			t.Fatalf("ParseConnString(%q): %v", s, err)
		}
		if got.String() != s || got.ID != want.ID || got.Public != want.Public || got.Name != want.Name || got.HardNAT != want.HardNAT || !slices.Equal(got.Direct, want.Direct) || !slices.Equal(got.LAN, want.LAN) || !slices.Equal(got.Relay, want.Relay) {
			t.Fatalf("round trip of %q gave %+v", s, got)
		}
	}
	mapped := "punchdrop:" + id.String() + "@[::ffff:203.0.113.7]:5,[2001:db8::7]:5?lan=[::ffff:10.0.0.2]:5"
	if got, err := ParseConnString(mapped); err != nil || got.Public != netip.MustParseAddrPort("203.0.113.7:5") || got.LAN[0] != netip.MustParseAddrPort("10.0.0.2:5") {
		t.Fatalf("IPv4-mapped addresses are not unmapped: %+v %v", got, err)
	}
	example := "punchdrop:" + id.String() + "@203.0.113.7:41641?lan=192.168.1.20:41641&name=alice"
	if got, err := ParseConnString("  " + example + "\n"); err != nil || got.String() != example {
		t.Fatalf("DESIGN.md example: %v %v", got, err)
	}
}

func TestParseConnStringErrors(t *testing.T) {
	id := mustID(t, 1).String()
	base := "punchdrop:" + id + "@203.0.113.7:41641"
	tests := []struct{ name, in, want string }{
		{"empty", "", "does not start with"},
		{"wrong scheme", "croc:" + id + "@1.2.3.4:5", "does not start with"},
		{"no at", "punchdrop:" + id, "no '@'"},
		{"bad id", "punchdrop:XYZ@1.2.3.4:5", "not a node ID"},
		{"no address", "punchdrop:" + id + "@", "no address"},
		{"host name", "punchdrop:" + id + "@example.com:5", "not an IP:port"},
		{"no port", "punchdrop:" + id + "@1.2.3.4", "not an IP:port"},
		{"port zero", "punchdrop:" + id + "@1.2.3.4:0", "port 0"},
		{"port too big", "punchdrop:" + id + "@1.2.3.4:70000", "not an IP:port"},
		{"unspecified", "punchdrop:" + id + "@0.0.0.0:5", "not a unicast"},
		{"multicast", "punchdrop:" + id + "@224.0.0.1:5", "not a unicast"},
		{"empty public item", base + ",", "not an IP:port"},
		{"too many public", "punchdrop:" + id + "@" + strings.TrimSuffix(strings.Repeat("[2001:db8::1]:5,", MaxDirectCandidates+2), ","), "at most"},
		{"zoned ipv6", "punchdrop:" + id + "@[fe80::1%eth0]:5", "not a unicast"},
		{"ipv6 no brackets", "punchdrop:" + id + "@2001:db8::1:5", "not an IP:port"},
		{"zoned lan", base + "?lan=[fe80::1%25eth0]:5", "not a unicast"},
		{"malformed field name", base + "?Turn=1.2.3.4:5", "field name"},
		{"field name with a space", base + "?a%20b=1", "field name"},
		{"empty field name", base + "?=1", "field name"},
		{"long field name", base + "?" + strings.Repeat("x", maxFieldNameLen+1) + "=1", "field name"},
		{"repeated unknown field", base + "?turn=1&turn=2", "given 2 times"},
		{"repeated field", base + "?name=a&name=b", "given 2 times"},
		{"bad lan", base + "?lan=1.2.3.4", "not an IP:port"},
		{"empty lan item", base + "?lan=1.2.3.4:5,", "not an IP:port"},
		{"too many lan", base + "?lan=" + strings.TrimSuffix(strings.Repeat("1.2.3.4:5,", MaxLANCandidates+1), ","), "at most"},
		{"bad relay", base + "?relay=relay.example.com:3478", "relay: \"relay.example.com:3478\" is not an IP:port"},
		{"relay port zero", base + "?relay=1.2.3.4:0", "port 0"},
		{"repeated nat", base + "?nat=hard&nat=hard", "given 2 times"},
		{"repeated relay", base + "?relay=1.2.3.4:5&relay=1.2.3.4:6", "given 2 times"},
		{"too many relays", base + "?relay=" + strings.TrimSuffix(strings.Repeat("1.2.3.4:5,", MaxRelayCandidates+1), ","), "at most"},
		{"bad query escape", base + "?name=%zz", "query"},
		{"control char in name", base + "?name=a%00b", "control character"},
		{"long name", base + "?name=" + strings.Repeat("x", MaxNameLen+1), "at most"},
		{"space-padded name", base + "?name=%20bob", "starts or ends with space"},
		{"too long", base + "?name=" + strings.Repeat("x", MaxConnStringLen), "characters, at most"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConnString(tc.in)
			if !errors.Is(err, ErrBadConnString) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseConnString(%q) = %v, want an ErrBadConnString mentioning %q", tc.in, err, tc.want)
			}
		})
	}
}

// A string from a newer agent reads: its unknown fields, and unknown
// kinds of NAT, are skipped; the known fields around them are read (and
// checked) as ever.
func TestParseConnStringSkipsNewerFields(t *testing.T) {
	id := mustID(t, 1)
	base := "punchdrop:" + id.String() + "@203.0.113.7:41641"
	public := netip.MustParseAddrPort("203.0.113.7:41641")
	tests := []struct {
		name string
		in   string
		want ConnString
	}{
		{"unknown field", base + "?turn=1.2.3.4:5&name=alice", ConnString{ID: id, Public: public, Name: "alice"}},
		{"unknown fields of every allowed character", base + "?x_1-y=whatever&" + strings.Repeat("z", maxFieldNameLen) + "=&lan=10.0.0.2:5",
			ConnString{ID: id, Public: public, LAN: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:5")}}},
		{"field with no value", base + "?quic2&nat=hard", ConnString{ID: id, Public: public, HardNAT: true}},
		{"nat=easy", base + "?nat=easy", ConnString{ID: id, Public: public}},
		{"unknown kind of nat", base + "?nat=cgnat-hard&name=bob", ConnString{ID: id, Public: public, Name: "bob"}},
		{"escaped known name", base + "?n%61t=hard", ConnString{ID: id, Public: public, HardNAT: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseConnString(tc.in)
			if err != nil {
				t.Fatalf("ParseConnString(%q): %v", tc.in, err)
			}
			if got.String() != tc.want.String() {
				t.Fatalf("ParseConnString(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzParseConnString(f *testing.F) {
	id := mustID(f, 1).String()
	f.Add("punchdrop:" + id + "@203.0.113.7:41641?lan=192.168.1.20:41641&name=alice")
	f.Add("punchdrop:" + id + "@?lan=10.0.0.1:1")
	f.Add("punchdrop:" + id + "@?relay=198.51.100.4:50123,198.51.100.4:50124&name=bob")
	f.Add("punchdrop:@")
	f.Add("punchdrop:" + id + "@[::1]:5?name=%ff")
	f.Add("punchdrop:" + id + "@203.0.113.7:5,[2001:db8::7]:5?lan=[fd00::1]:5,10.0.0.2:5&relay=[2001:db8::9]:7")
	f.Add("punchdrop:" + id + "@[::ffff:1.2.3.4]:5,[fe80::1%eth0]:5")
	f.Add("punchdrop:" + id + "@203.0.113.7:5?future_field=1&nat=cgnat&x-y=&name=carol")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConnString(s)
		if err != nil {
			return
		}
		// Whatever parses prints to a canonical form that parses the same.
		again, err := ParseConnString(c.String())
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", c.String(), s, err)
		}
		if again.String() != c.String() {
			t.Fatalf("canonical form unstable: %q vs %q", again.String(), c.String())
		}
	})
}

func TestHostCandidates(t *testing.T) {
	ips := func(s ...string) []netip.Addr {
		var out []netip.Addr
		for _, a := range s {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	aps := func(s ...string) []netip.AddrPort {
		var out []netip.AddrPort
		for _, a := range s {
			out = append(out, netip.MustParseAddrPort(a))
		}
		return out
	}
	host := ips("127.0.0.1", "::1", "192.168.1.20", "fe80::1", "fe80::2%eth0", "2001:db8:1::20", "fd00::20",
		"2001:db8:1::21", "2001:db8:1::22", "fd00::21", "fd00::22", "169.254.1.1", "::ffff:10.0.0.2", "ff02::1")
	tests := []struct {
		name      string
		withIPv6  bool
		preferred netip.Addr // the kernel's source for a global destination
		want      []netip.AddrPort
	}{
		{"ipv4 socket", false, netip.Addr{}, aps("192.168.1.20:7", "10.0.0.2:7")},
		{"dual-stack socket", true, netip.Addr{}, aps("192.168.1.20:7", "10.0.0.2:7", "[2001:db8:1::20]:7", "[2001:db8:1::21]:7", "[fd00::20]:7", "[fd00::21]:7")},
		// A privacy (temporary) address the kernel sends from, listed
		// after the two others, comes first, not cut off.
		{"preferred source", true, netip.MustParseAddr("2001:db8:1::22"), aps("192.168.1.20:7", "10.0.0.2:7", "[2001:db8:1::22]:7", "[2001:db8:1::20]:7", "[fd00::20]:7", "[fd00::21]:7")},
		{"preferred source listed first", true, netip.MustParseAddr("2001:db8:1::20"), aps("192.168.1.20:7", "10.0.0.2:7", "[2001:db8:1::20]:7", "[2001:db8:1::21]:7", "[fd00::20]:7", "[fd00::21]:7")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := hostCandidates(host, tc.withIPv6, tc.preferred, 7); !slices.Equal(got, tc.want) {
				t.Fatalf("hostCandidates = %v, want %v", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		ip     string
		public bool
	}{{"2001:db8::1", true}, {"2a00:1450::1", true}, {"fd00::1", false}, {"fe80::1", false}, {"203.0.113.7", false}, {"::ffff:203.0.113.7", false}, {"::1", false}} {
		if got := isPublicHostAddr(netip.MustParseAddr(tc.ip)); got != tc.public {
			t.Errorf("isPublicHostAddr(%s) = %v", tc.ip, got)
		}
	}
	if got := hostCandidates(ips("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6", "10.0.0.7", "10.0.0.8", "10.0.0.9"), true, netip.Addr{}, 1); len(got) != MaxLANCandidates {
		t.Fatalf("%d candidates, want at most %d", len(got), MaxLANCandidates)
	}
}
