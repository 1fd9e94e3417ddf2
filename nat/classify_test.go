package nat

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestDecide(t *testing.T) {
	local := []netip.AddrPort{ap("192.168.1.20:41641")}
	pub := ap("203.0.113.7:41641")
	pub2 := ap("203.0.113.7:50000")
	pub3 := ap("203.0.113.7:50001")
	// rfc is an RFC 5780 run behind a NAT with EI mapping and EI filtering;
	// cases change what they test.
	rfc := func(f func(*observations)) observations {
		o := observations{local: local, mapped: pub, rfc5780: true, rfcMapped: pub,
			altIP: pub, altIPPort: pub, changeIPPort: answered, changePort: answered}
		f(&o)
		return o
	}
	tests := []struct {
		name      string
		o         observations
		noNAT     bool
		mapping   Behavior
		filtering Behavior
		rfc5780   bool
	}{
		{"nothing answered", observations{local: local}, false, Unknown, Unknown, false},
		{"one plain server", observations{local: local, mapped: pub}, false, Unknown, Unknown, false},
		{"no NAT, one plain server", observations{local: local, mapped: local[0]}, true, EndpointIndependent, Unknown, false},
		{"no NAT, wildcard port", observations{local: []netip.AddrPort{ap("192.168.1.20:0")}, mapped: ap("192.168.1.20:9")}, true, EndpointIndependent, Unknown, false},
		{"two servers agree", observations{local: local, mapped: pub, second: pub}, false, EndpointIndependent, Unknown, false},
		{"two servers differ", observations{local: local, mapped: pub, second: pub2}, false, AddressAndPortDependent, Unknown, false},
		{"full cone", rfc(func(*observations) {}), false, EndpointIndependent, EndpointIndependent, true},
		{"restricted cone", rfc(func(o *observations) { o.changeIPPort = noAnswer }), false, EndpointIndependent, AddressDependent, true},
		{"port-restricted cone", rfc(func(o *observations) { o.changeIPPort, o.changePort = noAnswer, noAnswer }), false, EndpointIndependent, AddressAndPortDependent, true},
		{"EI filtering even if port probe lost", rfc(func(o *observations) { o.changePort = noAnswer }), false, EndpointIndependent, EndpointIndependent, true},
		{"address-dependent mapping", rfc(func(o *observations) {
			o.altIP, o.altIPPort, o.changeIPPort, o.changePort = pub2, pub2, noAnswer, noAnswer
		}), false, AddressDependent, AddressAndPortDependent, true},
		{"symmetric", rfc(func(o *observations) {
			o.altIP, o.altIPPort, o.changeIPPort, o.changePort = pub2, pub3, noAnswer, noAnswer
		}), false, AddressAndPortDependent, AddressAndPortDependent, true},
		{"test III lost: assume the stricter", rfc(func(o *observations) { o.altIP, o.altIPPort = pub2, netip.AddrPort{} }), false, AddressAndPortDependent, EndpointIndependent, true},
		{"test II lost, falls back to two servers", rfc(func(o *observations) { o.altIP, o.second = netip.AddrPort{}, pub }), false, EndpointIndependent, EndpointIndependent, true},
		{"test II lost, nothing else", rfc(func(o *observations) { o.altIP = netip.AddrPort{} }), false, Unknown, EndpointIndependent, true},
		{"RFC 5780 server is not the primary", rfc(func(o *observations) { o.rfcMapped, o.altIP, o.altIPPort = pub2, pub2, pub2 }), false, EndpointIndependent, EndpointIndependent, true},
		{"420 for ip+port", rfc(func(o *observations) { o.changeIPPort = unsupported }), false, EndpointIndependent, Unknown, false},
		{"420 for port", rfc(func(o *observations) { o.changeIPPort, o.changePort = noAnswer, unsupported }), false, EndpointIndependent, Unknown, false},
		{"filter probe failed", rfc(func(o *observations) { o.changeIPPort, o.changePort = noAnswer, failed }), false, EndpointIndependent, Unknown, true},
		{"filter probes not run", rfc(func(o *observations) { o.changeIPPort, o.changePort = notRun, notRun }), false, EndpointIndependent, Unknown, true},
		{"no NAT behind a firewall", rfc(func(o *observations) {
			o.mapped, o.rfcMapped, o.altIP, o.altIPPort = local[0], local[0], local[0], local[0]
			o.changeIPPort, o.changePort = noAnswer, noAnswer
		}), true, EndpointIndependent, AddressAndPortDependent, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := decide(tc.o)
			want := decision{noNAT: tc.noNAT, mapping: tc.mapping, filtering: tc.filtering, rfc5780: tc.rfc5780}
			if d != want {
				t.Fatalf("decide = %+v, want %+v", d, want)
			}
		})
	}
}

func TestPlainWords(t *testing.T) {
	pub := ap("203.0.113.7:41641")
	tests := []struct {
		r    Report
		want string
	}{
		{Report{Mapping: Unknown, Filtering: Unknown}, "unknown: no STUN server answered"},
		{Report{PublicAddr: pub, NoNAT: true, Mapping: EndpointIndependent, Filtering: Unknown}, "no NAT (public address)"},
		{Report{PublicAddr: pub, NoNAT: true, Mapping: EndpointIndependent, Filtering: AddressDependent}, "no NAT, but a firewall drops unsolicited packets"},
		{Report{PublicAddr: pub, Mapping: EndpointIndependent, Filtering: EndpointIndependent}, "easy NAT (full cone)"},
		{Report{PublicAddr: pub, Mapping: EndpointIndependent, Filtering: AddressDependent}, "restricted cone NAT"},
		{Report{PublicAddr: pub, Mapping: EndpointIndependent, Filtering: AddressAndPortDependent}, "port-restricted cone NAT"},
		{Report{PublicAddr: pub, Mapping: EndpointIndependent, Filtering: Unknown}, "cone NAT (filtering unknown)"},
		{Report{PublicAddr: pub, Mapping: AddressDependent, Filtering: Unknown}, "symmetric NAT: direct connections to cone NATs, not to other symmetric ones"},
		{Report{PublicAddr: pub, Mapping: AddressAndPortDependent, Filtering: AddressAndPortDependent}, "symmetric NAT: direct connections to cone NATs, not to other symmetric ones"},
		{Report{PublicAddr: pub, Mapping: Unknown, Filtering: Unknown}, "NAT of unknown kind"},
	}
	for _, tc := range tests {
		if got := tc.r.PlainWords(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestLocalCandidates(t *testing.T) {
	ifaces := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::ffff:192.168.1.20")}
	if got := localCandidates(ap("10.0.0.1:5"), ifaces); !slices.Equal(got, []netip.AddrPort{ap("10.0.0.1:5")}) {
		t.Errorf("bound socket: %v", got)
	}
	if got := localCandidates(ap("0.0.0.0:5"), ifaces); !slices.Equal(got, []netip.AddrPort{ap("127.0.0.1:5"), ap("192.168.1.20:5")}) {
		t.Errorf("wildcard socket: %v", got)
	}
	if got := localCandidates(netip.AddrPort{}, ifaces); !slices.Equal(got, []netip.AddrPort{ap("127.0.0.1:0"), ap("192.168.1.20:0")}) {
		t.Errorf("unknown socket: %v", got)
	}
}

func TestResolveServer(t *testing.T) {
	ctx := context.Background()
	v4, v6 := ap("127.0.0.1:9"), ap("[::1]:9")
	tests := []struct {
		server string
		local  netip.AddrPort
		want   netip.AddrPort // zero: an error
	}{
		{"127.0.0.1:3478", v4, ap("127.0.0.1:3478")},
		{"[::1]:3478", netip.AddrPort{}, ap("[::1]:3478")},
		{"[::1]:3478", ap("[::]:9"), ap("[::1]:3478")},
		{"[::1]:3478", v4, netip.AddrPort{}},
		{"127.0.0.1:3478", v6, netip.AddrPort{}},
		{"[::ffff:127.0.0.1]:3478", v4, ap("127.0.0.1:3478")},
		{"127.0.0.1", v4, netip.AddrPort{}},
		{"127.0.0.1:0", v4, netip.AddrPort{}},
		{"127.0.0.1:stun", v4, netip.AddrPort{}},
		{"127.0.0.1:70000", v4, netip.AddrPort{}},
		{"localhost:3478", v4, ap("127.0.0.1:3478")}, // from /etc/hosts, no network
	}
	for _, tc := range tests {
		got, err := resolveServer(ctx, tc.server, tc.local)
		if got != tc.want || (err == nil) != tc.want.IsValid() {
			t.Errorf("resolveServer(%q, %v) = %v, %v; want %v", tc.server, tc.local, got, err, tc.want)
		}
	}
}

func TestClassifyCoturn(t *testing.T) {
	primary, _ := startCoturn(t)
	conn, c := testSocket(t)
	start := time.Now()
	rep, err := Classify(context.Background(), c, localAddr(conn), []string{primary.String()})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Classify took %v: %+v (%s)", took, rep, rep.PlainWords())
	want := Report{PublicAddr: localAddr(conn), NoNAT: true, Mapping: EndpointIndependent,
		Filtering: EndpointIndependent, RFC5780: true, Servers: []string{primary.String()}}
	if rep.PublicAddr != want.PublicAddr || rep.NoNAT != want.NoNAT || rep.Mapping != want.Mapping ||
		rep.Filtering != want.Filtering || rep.RFC5780 != want.RFC5780 || !slices.Equal(rep.Servers, want.Servers) || rep.Err != "" {
		t.Fatalf("got %+v, want %+v", rep, want)
	}
	if rep.PlainWords() != "no NAT (public address)" || rep.Time.IsZero() || took > time.Second {
		t.Fatalf("words %q, time %v, took %v", rep.PlainWords(), rep.Time, took)
	}
}

// TestClassifyWildcardSocket: for a socket bound to 0.0.0.0, "no NAT"
// comes from the interface addresses.
func TestClassifyWildcardSocket(t *testing.T) {
	primary, _ := startCoturn(t)
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		t.Fatal(err)
	}
	c := NewSTUNClient(conn)
	go readLoop(conn, c)
	t.Cleanup(func() { conn.Close() })
	rep, err := Classify(context.Background(), c, localAddr(conn), []string{primary.String()})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.NoNAT || rep.PublicAddr != netip.AddrPortFrom(primary.Addr(), localAddr(conn).Port()) {
		t.Fatalf("got %+v", rep)
	}
}

// TestClassifyCutShort ends ctx while the filtering probes wait behind a
// port-restricted filter: Classify returns what it had, and ctx's error.
func TestClassifyCutShort(t *testing.T) {
	primary, _ := startCoturn(t)
	f, c := newFilterSocket(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	rep, err := Classify(ctx, c, localAddr(f.UDPConn), []string{primary.String()})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Classify = %v, want DeadlineExceeded", err)
	}
	if !rep.PublicAddr.IsValid() || rep.Filtering != Unknown || rep.Err == "" {
		t.Fatalf("got %+v", rep)
	}
}

// TestClassifyPretendNAT passes a local address that is not the socket's,
// so Classify cannot shortcut to "no NAT" and must decide mapping by RFC
// 5780 tests II and III (both see the same mapping on loopback).
func TestClassifyPretendNAT(t *testing.T) {
	primary, _ := startCoturn(t)
	_, c := testSocket(t)
	rep, err := Classify(context.Background(), c, ap("192.168.1.20:41641"), []string{primary.String()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.NoNAT || rep.Mapping != EndpointIndependent || rep.Filtering != EndpointIndependent || !rep.RFC5780 {
		t.Fatalf("got %+v", rep)
	}
	if rep.PlainWords() != "easy NAT (full cone)" {
		t.Fatalf("words %q", rep.PlainWords())
	}
}

// filterSocket is testSocket with a user-space NAT filter in front of the
// reader: it drops datagrams from addresses (AD) or address and port
// pairs (APD) the socket has not sent to, like a restricted NAT.
type filterSocket struct {
	*net.UDPConn
	portToo bool
	mu      sync.Mutex
	sent    map[netip.AddrPort]bool
}

func (f *filterSocket) WriteTo(b []byte, addr net.Addr) (int, error) {
	a := addr.(*net.UDPAddr).AddrPort()
	f.mu.Lock()
	f.sent[a] = true
	if !f.portToo {
		f.sent[netip.AddrPortFrom(a.Addr(), 0)] = true
	}
	f.mu.Unlock()
	return f.UDPConn.WriteTo(b, addr)
}

func (f *filterSocket) allowed(from netip.AddrPort) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent[from] || !f.portToo && f.sent[netip.AddrPortFrom(from.Addr(), 0)]
}

// newFilterSocket is testSocket behind a filterSocket.
func newFilterSocket(t testing.TB, portToo bool) (*filterSocket, *STUNClient) {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f := &filterSocket{UDPConn: conn, portToo: portToo, sent: map[netip.AddrPort]bool{}}
	c := NewSTUNClient(f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if stun.IsMessage(buf[:n]) && f.allowed(from.AddrPort()) {
				c.HandleSTUN(buf[:n], from)
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return f, c
}

func TestClassifyFiltering(t *testing.T) {
	primary, _ := startCoturn(t)
	for _, tc := range []struct {
		portToo bool
		want    Behavior
	}{{false, AddressDependent}, {true, AddressAndPortDependent}} {
		t.Run(string(tc.want), func(t *testing.T) {
			t.Parallel()
			f, c := newFilterSocket(t, tc.portToo)
			conn := f.UDPConn
			start := time.Now()
			rep, err := Classify(context.Background(), c, localAddr(conn), []string{primary.String()})
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("Classify took %v: %+v (%s)", took, rep, rep.PlainWords())
			if rep.Filtering != tc.want || !rep.RFC5780 || !rep.NoNAT {
				t.Fatalf("got %+v, want filtering %v", rep, tc.want)
			}
			if took > filterProbeTimeout+time.Second {
				t.Fatalf("Classify took %v", took)
			}
		})
	}
}

func TestClassifyWithoutRFC5780(t *testing.T) {
	one := startCoturnSingle(t)
	two := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.3"), startCoturnOn(t, netip.MustParseAddr("127.0.0.3")))
	_, c := testSocket(t)
	pretend := ap("192.168.1.20:41641")
	rep, err := Classify(context.Background(), c, pretend, []string{one.String()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mapping != Unknown || rep.Filtering != Unknown || rep.RFC5780 || rep.Err == "" {
		t.Fatalf("one server without RFC 5780: %+v", rep)
	}
	rep, err = Classify(context.Background(), c, pretend, []string{one.String(), two.String()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mapping != EndpointIndependent || rep.Filtering != Unknown || rep.RFC5780 || len(rep.Servers) != 2 {
		t.Fatalf("two servers without RFC 5780: %+v", rep)
	}
	if rep.PlainWords() != "cone NAT (filtering unknown)" {
		t.Fatalf("words %q", rep.PlainWords())
	}
	// The change probe itself sees error 420.
	if o, err := probeChange(context.Background(), c, one, ChangeIPPort); o != unsupported || err == nil {
		t.Fatalf("probeChange on a server without RFC 5780 = %v, %v", o, err)
	}
}

func TestClassifyNoServer(t *testing.T) {
	hole := newBlackHole(t)
	conn, c := testSocket(t)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep, err := Classify(ctx, c, localAddr(conn), []string{hole.addr.String(), "bad-port:x"})
	if !errors.Is(err, ErrNoSTUNServer) || !errors.Is(err, ErrSTUNTimeout) {
		t.Fatalf("Classify = %v, want ErrNoSTUNServer", err)
	}
	if time.Since(start) > time.Second || rep.PublicAddr.IsValid() || !strings.Contains(rep.Err, "no response") {
		t.Fatalf("took %v, report %+v", time.Since(start), rep)
	}
	if _, err := Classify(ctx, c, localAddr(conn), nil); !errors.Is(err, ErrNoSTUNServer) {
		t.Fatalf("no servers: %v", err)
	}
}

func TestDefaultSTUNServers(t *testing.T) {
	s := DefaultSTUNServers()
	if len(s) < 2 {
		t.Fatal(s)
	}
	for _, hp := range s {
		if _, _, err := net.SplitHostPort(hp); err != nil {
			t.Error(err)
		}
	}
	s[0] = "changed"
	if DefaultSTUNServers()[0] == "changed" {
		t.Fatal("DefaultSTUNServers shares its slice")
	}
}

// TestProbeChangeIgnored: a server that answers CHANGE-REQUEST from the
// address the request went to has not honoured it; counting that answer
// would fake endpoint-independent filtering.
func TestProbeChangeIgnored(t *testing.T) {
	srv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := srv.ReadFromUDP(buf)
			if err != nil {
				return
			}
			resp := response(t, buf[:n], stun.BindingSuccess, &stun.XORMappedAddress{IP: from.IP, Port: from.Port})
			srv.WriteToUDP(resp, from)
		}
	}()
	_, c := testSocket(t)
	for _, change := range []ChangeRequest{ChangePort, ChangeIPPort} {
		if o, err := probeChange(context.Background(), c, localAddr(srv), change); o != unsupported || err == nil {
			t.Errorf("probeChange(%v) = %v, %v; want unsupported", change, o, err)
		}
	}
}
