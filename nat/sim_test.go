package nat

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/punchdrop/punchdrop/simnet"
)

// TestClassifySimulatedNATs runs ClassifyOnce behind each kind of
// simulated NAT against the simulated RFC 5780 STUN server. The verdicts
// for the kinds the kernel lab has are those it reports there
// (e2e.TestNATReportPerKind); address-restricted is the cone that
// filters by address only.
func TestClassifySimulatedNATs(t *testing.T) {
	tests := []struct {
		kind               simnet.Kind
		noNAT              bool
		mapping, filtering Behavior
	}{
		{simnet.None, true, EndpointIndependent, EndpointIndependent},
		{simnet.FullCone, false, EndpointIndependent, EndpointIndependent},
		{simnet.AddressRestricted, false, EndpointIndependent, AddressDependent},
		{simnet.PortRestricted, false, EndpointIndependent, AddressAndPortDependent},
		{simnet.Symmetric, false, AddressAndPortDependent, AddressAndPortDependent},
	}
	for _, tc := range tests {
		// In a bubble, the filtering probes' wait for an answer that
		// never comes costs no real time.
		t.Run(string(tc.kind), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				n := simnet.New(simnet.Config{})
				srv, err := n.AddSTUNServer()
				if err != nil {
					t.Fatal(err)
				}
				defer srv.Close()
				site := n.AddSite(tc.kind.NAT())
				conn, err := site.AddHost().Listen(0)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				r, err := ClassifyOnce(ctx, conn, []string{srv.Addr().String()})
				if err != nil {
					t.Fatal(err)
				}
				wantIP := site.PublicIP()
				if tc.noNAT {
					wantIP = conn.AddrPort().Addr()
				}
				if r.PublicAddr.Addr() != wantIP || r.NoNAT != tc.noNAT || r.Mapping != tc.mapping || r.Filtering != tc.filtering || !r.RFC5780 {
					t.Fatalf("report %+v; want public %s, no NAT %v, mapping %s, filtering %s", r, wantIP, tc.noNAT, tc.mapping, tc.filtering)
				}
				t.Logf("%s: %s", tc.kind, r.PlainWords())
			})
		})
	}
}
