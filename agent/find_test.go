package agent

import (
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/dht"
	"github.com/punchdrop/punchdrop/session"
	"github.com/punchdrop/punchdrop/store"
	"github.com/punchdrop/punchdrop/testutil"
)

func TestDHTBootstrapChoice(t *testing.T) {
	own := []string{"198.18.0.240:6881"}
	flag := []string{"198.18.0.241:6881"}
	tests := []struct {
		name     string
		dht      bool
		config   []string
		override []string
		want     []string
	}{
		{"default: the mainline routers", true, nil, nil, dht.DefaultBootstrap()},
		{"configured nodes", true, own, nil, own},
		{"off in the config", false, own, nil, nil},
		{"the flag wins", true, own, flag, flag},
		{"the flag wins over off", false, nil, flag, flag},
		{"none turns it off", true, own, []string{NoDHT}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DHT, cfg.DHTBootstrap = tc.dht, tc.config
			if got := dhtBootstrap(cfg, tc.override); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// A stored peer's learned addresses come back as candidates, its last
// session's address once.
func TestPeerInfoFromStore(t *testing.T) {
	ap := netip.MustParseAddrPort
	p := store.Peer{
		ID: session.NodeID{1}, Name: "bob", Public: ap("198.18.0.11:4000"), LastAddr: ap("198.19.1.10:4000"),
		Learned: []store.LearnedAddr{
			{Addr: ap("198.18.0.11:4000"), Kind: session.PathDirect, Source: session.SourceDHT}, // in the string already
			{Addr: ap("198.19.1.10:4000"), Kind: session.PathLAN, Source: session.SourceLAN},
			{Addr: ap("198.18.0.4:50000"), Kind: session.PathRelay, Source: session.SourceSession},
		},
	}
	info := peerInfoFromStore(p)
	want := []session.Candidate{
		{Addr: ap("198.19.1.10:4000"), Kind: session.PathLAN, Source: session.SourceLAN},
		{Addr: ap("198.18.0.4:50000"), Kind: session.PathRelay, Source: session.SourceSession},
	}
	if !slices.Equal(info.Candidates, []netip.AddrPort{p.Public}) || !slices.Equal(info.Learned, want) {
		t.Fatalf("candidates %v, learned %v; want learned %v", info.Candidates, info.Learned, want)
	}
}

// The DHT follows the config: off, then on through a loopback DHT node
// (which answers), then off again, while the agent runs.
func TestDHTFollowsConfig(t *testing.T) {
	node, err := dht.New(dht.Config{Listen: "127.0.0.2:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Close() })
	home := t.TempDir()
	writeConfig(t, home, "dht", "false", "dht_bootstrap", node.Addr().String())
	c, _ := startAgentWith(t, Options{Home: home, Name: "alice", Port: -1, STUNServers: []string{"127.0.0.1:9"}, Stderr: io.Discard})
	dhtOf := func() *control.DHTInfo {
		info, err := c.NAT(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return info.DHT
	}
	if d := dhtOf(); d == nil || d.Enabled {
		t.Fatalf("with dht = false: %+v", d)
	}
	reload := func(value string) {
		t.Helper()
		writeConfig(t, home, "dht", value)
		res, err := c.ReloadConfig(t.Context())
		if err != nil || !slices.Contains(res.Applied, "dht") || res.Restarting {
			t.Fatalf("reload: %+v, %v", res, err)
		}
	}
	reload("true")
	testutil.WaitFor(t, 10*time.Second, "the DHT node to join", func() bool {
		d := dhtOf()
		return d.Enabled && d.Reachable != nil && *d.Reachable && d.Answered == 1
	})
	if d := dhtOf(); !slices.Equal(d.Bootstrap, []string{node.Addr().String()}) || d.Since == nil || d.Summary == "" {
		t.Fatalf("DHT on: %+v", d)
	}
	reload("false")
	if d := dhtOf(); d.Enabled {
		t.Fatalf("after turning it off: %+v", d)
	}
}
