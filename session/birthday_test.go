package session

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/nat"
	"github.com/punchdrop/punchdrop/simnet"
	"github.com/punchdrop/punchdrop/testutil"
)

// spareCount is how many spare sockets the node holds open.
func (n *Node) spareCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.spares)
}

func TestBirthdayRole(t *testing.T) {
	const (
		ei  = nat.EndpointIndependent
		ad  = nat.AddressDependent
		apd = nat.AddressAndPortDependent
	)
	listen := func() (net.PacketConn, error) { return nil, nil }
	tests := []struct {
		name               string
		mapping, filtering nat.Behavior
		noPublic           bool
		peerHard           bool
		want               birthdayRole
	}{
		{"symmetric facing an easy NAT", apd, apd, false, false, birthdayHard},
		{"address-dependent mapping facing an easy NAT", ad, apd, false, false, birthdayHard},
		{"both symmetric", apd, apd, false, true, birthdayNone},
		{"port-restricted facing a symmetric one", ei, apd, false, true, birthdayEasy},
		{"unknown filtering facing a symmetric one", ei, "", false, true, birthdayEasy},
		{"address-restricted facing a symmetric one: plain punching lets it in", ei, ad, false, true, birthdayNone},
		{"full cone facing a symmetric one", ei, ei, false, true, birthdayNone},
		{"two easy NATs", ei, apd, false, false, birthdayNone},
		{"no public address", apd, apd, true, false, birthdayNone},
		{"unknown mapping facing a symmetric one", "", apd, false, true, birthdayNone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := &Node{cfg: NodeConfig{ListenSpare: listen}}
			n.report = nat.Report{Mapping: tc.mapping, Filtering: tc.filtering}
			if !tc.noPublic {
				n.report.PublicAddr = netip.MustParseAddrPort("203.0.113.7:40000")
			}
			if got := n.birthdayRole(&peer{hard: tc.peerHard}); got != tc.want {
				t.Fatalf("role %d, want %d", got, tc.want)
			}
		})
	}
	// A node that cannot open sockets like its own does not play the
	// hard side.
	n := &Node{conn: &simnet.Conn{}, report: nat.Report{PublicAddr: netip.MustParseAddrPort("203.0.113.7:40000"), Mapping: apd, Filtering: apd}}
	if got := n.birthdayRole(&peer{}); got != birthdayNone {
		t.Fatalf("role %d without a way to open spares", got)
	}
}

func TestRandomPorts(t *testing.T) {
	ports := randomPorts(birthdayProbes)
	seen := map[uint16]bool{}
	for _, p := range ports {
		if p < minRandomPort || seen[p] {
			t.Fatalf("port %d: below %d or drawn twice", p, minRandomPort)
		}
		seen[p] = true
	}
	if len(ports) != birthdayProbes {
		t.Fatalf("%d ports, want %d", len(ports), birthdayProbes)
	}
}

// TestSimulatedBirthdayGivesUp: a symmetric node facing a port-restricted
// one that does not know the other's NAT is hard (an old connection
// string) opens its spares, no more than birthdaySockets, and closes
// every one of them when the punch gives up; the peer, which never
// probed random ports, never connected.
func TestSimulatedBirthdayGivesUp(t *testing.T) {
	w := newSimWorld(t)
	w.punchTimeout = 4 * time.Second
	a := w.node(t, w.net.AddSite(simnet.PortRestricted.NAT()), "alice")
	b := w.node(t, w.net.AddSite(simnet.Symmetric.NAT()), "bob")
	cs := b.ConnString()
	if !cs.HardNAT || !strings.Contains(cs.String(), "nat=hard") {
		t.Fatalf("bob's string does not say his NAT is hard: %s", cs)
	}
	cs.HardNAT = false
	a.AddPeer(infoFrom(cs))
	b.AddPeer(infoFrom(a.ConnString()))
	most := 0
	testutil.WaitFor(t, 3*w.punchTimeout, "bob to give up", func() bool {
		most = max(most, b.spareCount())
		st := stateOf(b, a.ID())
		return st.State == StateOffline && strings.Contains(st.Error, ErrUnreachable.Error())
	})
	if most == 0 || most > birthdaySockets {
		t.Fatalf("bob held at most %d spares, want 1 to %d", most, birthdaySockets)
	}
	testutil.WaitFor(t, time.Second, "bob to close his spares", func() bool { return b.spareCount() == 0 })
	if st := stateOf(a, b.ID()); st.State == StateConnected {
		t.Fatalf("alice is connected to bob: %+v", st)
	}
}

func TestBirthdayTarget(t *testing.T) {
	ap := netip.MustParseAddrPort
	told := Candidate{Addr: ap("203.0.113.9:4000"), Kind: PathDirect, Source: SourceSession}
	str := Candidate{Addr: ap("198.51.100.7:41641"), Kind: PathDirect, Source: SourceConnString}
	dht := Candidate{Addr: ap("198.51.100.8:41641"), Kind: PathDirect, Source: SourceDHT}
	v6 := Candidate{Addr: ap("[2001:db8::7]:41641"), Kind: PathDirect, Source: SourceConnString}
	for _, tc := range []struct {
		name  string
		cands []Candidate
		want  netip.AddrPort
	}{
		{"the connection string's over what a session told", []Candidate{told, str}, str.Addr},
		{"the DHT's over what a session told", []Candidate{told, dht}, dht.Addr},
		{"what a session told when nothing else", []Candidate{told}, told.Addr},
		{"never IPv6 (no NAT to beat there)", []Candidate{v6}, netip.AddrPort{}},
		{"none", nil, netip.AddrPort{}},
	} {
		got, ok := birthdayTarget(tc.cands)
		if got != tc.want || ok != tc.want.IsValid() {
			t.Errorf("%s: %v %v, want %v", tc.name, got, ok, tc.want)
		}
	}
}
