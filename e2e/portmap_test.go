package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
	"github.com/punchdrop/punchdrop/portmap"
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
