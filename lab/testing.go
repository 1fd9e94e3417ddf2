package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"testing"
)

// tools the lab runs; .ci/run installs them.
var tools = []string{"ip", iptablesCmd, ip6tablesCmd, "ipset", "conntrack", "turnserver", "tc", "ethtool", "ping"}

// Available says why labs cannot be built here, or nil when they can.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("the NAT lab needs root (network namespaces)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the NAT lab needs %s: install iproute2 iptables ipset conntrack coturn ethtool iputils-ping", tool)
		}
	}
	var id [4]byte
	rand.Read(id[:])
	probe := "pdprobe" + hex.EncodeToString(id[:])
	if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
		return fmt.Errorf("cannot create a network namespace: %v: %s", err, out)
	}
	exec.Command("ip", "netns", "del", probe).Run()
	return nil
}

// Require skips the test when labs cannot be built, or fails it when
// CI=true: in CI a lab test must never skip silently.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() && os.Getenv("CI") != "true" {
		t.Skip("lab tests are skipped in -short mode")
	}
	if err := Available(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %v", err)
		}
		t.Skipf("skipping lab test: %v", err)
	}
}

// New builds a lab for a test and removes it when the test ends, pass or
// fail.
func New(t testing.TB) *Lab {
	t.Helper()
	Require(t)
	l, err := Build(context.Background())
	if err != nil {
		t.Fatalf("build lab: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("remove lab: %v", err)
		}
	})
	l.tb = t
	return l
}

// AddSite is NewSite for tests: it fails the test on error.
func (l *Lab) AddSite(kind NATKind) *Site {
	l.tb.Helper()
	s, err := l.NewSite(kind)
	if err != nil {
		l.tb.Fatal(err)
	}
	return s
}

// AddDualStackSite is AddSite with EnableIPv6: a site of kind whose
// hosts have IPv6 too, behind a stateful firewall. It fails the test on
// error.
func (l *Lab) AddDualStackSite(kind NATKind) *Site {
	l.tb.Helper()
	s := l.AddSite(kind)
	if err := s.EnableIPv6(); err != nil {
		l.tb.Fatal(err)
	}
	return s
}

// AddHost is NewHost for tests: it fails the test on error.
func (s *Site) AddHost() *Host {
	s.lab.tb.Helper()
	h, err := s.NewHost()
	if err != nil {
		s.lab.tb.Fatal(err)
	}
	return h
}

// AddDHTNodes is StartDHTNodes for tests: it fails the test on error.
func (l *Lab) AddDHTNodes(bin string, n int) []*DHTNode {
	l.tb.Helper()
	nodes, err := l.StartDHTNodes(context.Background(), bin, n)
	if err != nil {
		l.tb.Fatal(err)
	}
	return nodes
}

// AddCarrier is NewCarrier for tests: it fails the test on error.
func (l *Lab) AddCarrier(hairpin bool) *Site {
	l.tb.Helper()
	s, err := l.NewCarrier(hairpin)
	if err != nil {
		l.tb.Fatal(err)
	}
	return s
}

// AddSiteBehind is NewSiteBehind for tests: it fails the test on error.
func (l *Lab) AddSiteBehind(carrier *Site, kind NATKind) *Site {
	l.tb.Helper()
	s, err := l.NewSiteBehind(carrier, kind)
	if err != nil {
		l.tb.Fatal(err)
	}
	return s
}

// AddSiteWithLAN is NewSiteWithLAN for tests: it fails the test on error.
func (l *Lab) AddSiteWithLAN(kind NATKind, lan netip.Prefix) *Site {
	l.tb.Helper()
	s, err := l.NewSiteWithLAN(kind, lan)
	if err != nil {
		l.tb.Fatal(err)
	}
	return s
}
