package agent

import (
	"net/netip"
	"testing"

	"github.com/punchdrop/punchdrop/nat"
	"github.com/punchdrop/punchdrop/session"
)

// The router is asked again when the network changed (new LAN addresses,
// a new public IP), not at the first report, not when only the port STUN
// sees moved (a symmetric NAT picks one per destination), and not when
// the node's own candidates changed otherwise (the mapping itself).
func TestPortMappingRefreshesOnNetworkChange(t *testing.T) {
	lan := func(addrs ...string) []session.Candidate {
		var out []session.Candidate
		for _, a := range addrs {
			out = append(out, session.Candidate{Addr: netip.MustParseAddrPort(a), Kind: session.PathLAN})
		}
		return out
	}
	mapped := session.Candidate{Addr: netip.MustParseAddrPort("203.0.113.7:41641"), Kind: session.PathDirect}
	report := func(addr string) nat.Report { return nat.Report{PublicAddr: netip.MustParseAddrPort(addr)} }
	steps := []struct {
		name    string
		do      func(*portMapping)
		refresh bool
	}{
		{"first candidates", func(pm *portMapping) { pm.localCandidates(lan("192.168.1.20:41641")) }, false},
		{"first NAT report", func(pm *portMapping) { pm.natChanged(report("203.0.113.7:50000")) }, false},
		{"the mapping joins the candidates", func(pm *portMapping) {
			pm.localCandidates(append(lan("192.168.1.20:41641"), mapped))
		}, false},
		{"STUN sees another port", func(pm *portMapping) { pm.natChanged(report("203.0.113.7:50001")) }, false},
		{"no STUN answer", func(pm *portMapping) { pm.natChanged(nat.Report{}) }, false},
		{"a new LAN address", func(pm *portMapping) { pm.localCandidates(lan("10.0.0.5:41641")) }, true},
		{"a new public IP", func(pm *portMapping) { pm.natChanged(report("198.51.100.9:50000")) }, true},
	}
	refreshed := 0
	pm := &portMapping{refresh: func() { refreshed++ }}
	for _, st := range steps {
		before := refreshed
		st.do(pm)
		if got := refreshed > before; got != st.refresh {
			t.Errorf("%s: asked the router again: %v, want %v", st.name, got, st.refresh)
		}
	}
	var off *portMapping // port_mapping off: every call is a no-op
	off.localCandidates(lan("10.0.0.5:41641"))
	off.natChanged(report("198.51.100.9:50000"))
	if off.info() != nil {
		t.Error("port mapping off, yet info describes a mapping")
	}
}
