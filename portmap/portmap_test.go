package portmap

import (
	"bufio"
	"net/netip"
	"strings"
	"testing"
)

func TestParseDefaultRoute(t *testing.T) {
	// /proc/net/route on a little-endian host: default via 192.168.1.1.
	const table = `Iface	Destination	Gateway 	Flags	RefCnt	Use	Metric	Mask		MTU	Window	IRTT
eth0	0001A8C0	00000000	0001	0	0	0	00FFFFFF	0	0	0
eth0	00000000	0101A8C0	0003	0	0	0	00000000	0	0	0
`
	gw, err := parseDefaultRoute(bufio.NewScanner(strings.NewReader(table)))
	if err != nil || gw != netip.MustParseAddr("192.168.1.1") {
		t.Fatalf("gateway %s, %v", gw, err)
	}
	if _, err := parseDefaultRoute(bufio.NewScanner(strings.NewReader("Iface\tDestination\tGateway\n"))); err == nil {
		t.Fatal("a table without a default route gave a gateway")
	}
}

// A MAP request is what RFC 6887 lays out, and an answer to it decodes;
// anything else is refused without a panic.
func TestPCPMessages(t *testing.T) {
	req := pcpRequest{client: netip.MustParseAddr("192.168.1.20"), internal: 41641, lifetime: 7200, nonce: [12]byte{1, 2, 3}}
	b := req.marshal()
	if len(b) != 60 || b[0] != 2 || b[1] != 1 || b[4] != 0 || b[7] != 0x20 || b[24+12] != 17 || b[24+16] != 0xa2 || b[24+17] != 0xa9 {
		t.Fatalf("request % x", b)
	}
	if client := netip.AddrFrom16([16]byte(b[8:24])).Unmap(); client != req.client {
		t.Fatalf("client address %s", client)
	}
	// The router's answer: the same message with R set, result 0, the
	// external address filled in.
	ans := append([]byte(nil), b...)
	ans[1] |= pcpResponse
	ext := netip.MustParseAddr("203.0.113.7").As16()
	copy(ans[24+20:], ext[:])
	ans[24+18], ans[24+19] = 0xa2, 0xaa
	a, err := parsePCPAnswer(ans)
	if err != nil || a.external != netip.MustParseAddrPort("203.0.113.7:41642") || a.nonce != req.nonce || a.lifetime != 7200 || a.internal != 41641 {
		t.Fatalf("answer %+v, %v", a, err)
	}
	for _, bad := range [][]byte{nil, b[:59], b /* a request, not an answer */, append([]byte{0}, ans[1:]...)} {
		if _, err := parsePCPAnswer(bad); err == nil {
			t.Errorf("parsed % x", bad)
		}
	}
}

func FuzzParsePCPAnswer(f *testing.F) {
	f.Add(make([]byte, 60))
	f.Add(append([]byte{2, 0x81}, make([]byte, 58)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		parsePCPAnswer(b)
	})
}

// Only one protocol maps, the most preferred whose probe answered, and
// only once every one before it is known to have failed or tried.
func TestNextToMap(t *testing.T) {
	ok, fail := &probeAnswer{}, &probeAnswer{err: ErrNoMapping}
	tests := []struct {
		name   string
		probes []*probeAnswer
		tried  []bool
		want   int
	}{
		{"nothing answered yet", []*probeAnswer{nil, nil, nil}, make([]bool, 3), -1},
		{"a less preferred one waits", []*probeAnswer{nil, ok, ok}, make([]bool, 3), -1},
		{"the preferred one at once", []*probeAnswer{ok, nil, nil}, make([]bool, 3), 0},
		{"after a failed probe", []*probeAnswer{fail, ok, nil}, make([]bool, 3), 1},
		{"after a failed mapping", []*probeAnswer{ok, ok, nil}, []bool{true, false, false}, 1},
		{"waits for the next probe", []*probeAnswer{ok, nil, ok}, []bool{true, false, false}, -1},
		{"all tried", []*probeAnswer{ok, fail, ok}, []bool{true, false, true}, -1},
	}
	for _, tt := range tests {
		if got := nextToMap(tt.probes, tt.tried); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestReachableExternal(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"203.0.113.7", true},
		{"198.18.0.11", true}, // the lab's internet
		{"192.168.1.1", false},
		{"10.0.0.1", false},
		{"100.64.3.1", false}, // behind a carrier's NAT
		{"0.0.0.0", false},
		{"127.0.0.1", false},
		{"::ffff:203.0.113.7", true},
	} {
		if got := reachableExternal(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("reachableExternal(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
}
