package session

import (
	"net/netip"
	"testing"

	"github.com/punchdrop/punchdrop/nat"
)

// The connection string names the mapped port as the public address
// where STUN's is of no use to a peer (a NAT that maps per destination,
// or none found), and STUN's where it is.
func TestConnStringPublicWithPortMapping(t *testing.T) {
	stun := netip.MustParseAddrPort("203.0.113.7:40001")
	mapped := netip.MustParseAddrPort("203.0.113.7:41641")
	tests := []struct {
		name     string
		report   nat.Report
		mapped   netip.AddrPort
		want     netip.AddrPort
		wantCand bool // the mapped address is among the own candidates
	}{
		{"no mapping", nat.Report{PublicAddr: stun, Mapping: nat.AddressAndPortDependent}, netip.AddrPort{}, stun, false},
		{"symmetric", nat.Report{PublicAddr: stun, Mapping: nat.AddressAndPortDependent}, mapped, mapped, true},
		{"address-dependent", nat.Report{PublicAddr: stun, Mapping: nat.AddressDependent}, mapped, mapped, true},
		{"mapping unknown", nat.Report{PublicAddr: stun, Mapping: nat.Unknown}, mapped, mapped, true},
		{"no STUN answer", nat.Report{}, mapped, mapped, true},
		{"cone keeps STUN's", nat.Report{PublicAddr: stun, Mapping: nat.EndpointIndependent}, mapped, stun, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &Node{cfg: NodeConfig{Identity: Identity{ID: mustID(t, 3)}}, report: tt.report}
			if tt.mapped.IsValid() {
				n.extra = map[string][]Candidate{mappedProvider: {{Addr: tt.mapped, Kind: PathDirect}}}
			}
			cs := n.ConnString()
			if cs.Public != tt.want {
				t.Errorf("public address %s, want %s", cs.Public, tt.want)
			}
			if _, err := ParseConnString(cs.String()); err != nil {
				t.Errorf("%q does not parse: %v", cs, err)
			}
			found := false
			for _, c := range n.LocalCandidates() {
				found = found || (c.Addr == tt.mapped && c.Kind == PathDirect)
			}
			if found != tt.wantCand {
				t.Errorf("mapped address among the candidates: %v, want %v", found, tt.wantCand)
			}
		})
	}
}
