package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/dht"
)

func TestConfigSaveLoadRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	want := DefaultConfig()
	want.Name = "Zoë \"z\""
	want.ListenPort = 41641
	want.STUNServers = []string{"198.18.0.2:3478", "stun.example.net:3478"}
	want.Relays = []string{"turn:punchdrop:pass%2Cword@198.18.0.4?transport=tcp", "turns:relay.example.com:443?secret=s3cret"}
	want.PunchTimeout = Duration{90 * time.Second}
	want.MinFreeSpace, want.MaxStagedPerPeer = 3<<29, 500e6
	want.HistoryDays = 7
	want.DHT, want.DHTBootstrap = false, []string{"198.18.0.240:6881", "dht.example.org:6881"}
	want.PortMapping = false
	if err := want.Save(path); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("config mode %o", fi.Mode().Perm())
	}
	got, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != want.Name || got.ListenPort != want.ListenPort || strings.Join(got.STUNServers, ",") != strings.Join(want.STUNServers, ",") || got.PunchTimeout != want.PunchTimeout ||
		!slices.Equal(got.Relays, want.Relays) ||
		got.MinFreeSpace != want.MinFreeSpace || got.MaxStagedPerPeer != want.MaxStagedPerPeer || got.HistoryDays != want.HistoryDays ||
		got.DHT != want.DHT || got.PortMapping != want.PortMapping || strings.Join(got.DHTBootstrap, ",") != strings.Join(want.DHTBootstrap, ",") {
		t.Fatalf("round trip: got %+v, want %+v", got, want)
	}
	relays := got.Effective(Paths{}).Relays
	if len(relays) != 2 || strings.Contains(strings.Join(relays, " "), "pass") || strings.Contains(strings.Join(relays, " "), "s3cret") {
		t.Fatalf("Effective shows the relays as %q: with a secret, or not all", relays)
	}
	b, _ := os.ReadFile(path)
	for _, line := range []string{"# UDP port punchdrop listens on", "# TURN relays", "# Free space that received files never eat into", `min_free_space = "1536MiB"`, `max_staged_per_peer = "500MB"`, "# How many days finished transfers", "history_days = 7"} {
		if !strings.Contains(string(b), line) {
			t.Fatalf("saved config lacks %q:\n%s", line, b)
		}
	}
}

// TestConfigSizes: sizes read as text with a unit, or as a TOML number
// of bytes; an empty one keeps the default.
func TestConfigSizes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(path, []byte("min_free_space = 1048576\nmax_staged_per_peer = \"\"\n"), 0o600)
	cfg, err := LoadConfig(path)
	if err != nil || cfg.MinFreeSpace != 1<<20 || cfg.MaxStagedPerPeer != DefaultConfig().MaxStagedPerPeer {
		t.Fatalf("LoadConfig = %v, %v", cfg, err)
	}
	if d := DefaultConfig(); d.MinFreeSpace.String() != "2GiB" || d.MaxStagedPerPeer.String() != "100GiB" {
		t.Fatalf("defaults %s, %s", d.MinFreeSpace, d.MaxStagedPerPeer)
	}
	info := cfg.Effective(Paths{})
	if info.MinFreeSpace != "1MiB" || info.MaxStagedPerPeer != "100GiB" {
		t.Fatalf("Effective shows %q and %q", info.MinFreeSpace, info.MaxStagedPerPeer)
	}
}

// TestConfigFromBeforeHistoryDays: a config file written before
// history_days and the DHT settings existed keeps the defaults, and
// shows them.
func TestConfigFromBeforeHistoryDays(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.toml")
	os.WriteFile(path, []byte("name = \"old\"\n"), 0o600)
	cfg, err := LoadConfig(path)
	if err != nil || cfg.HistoryDays != DefaultHistoryDays || cfg.Effective(Paths{}).HistoryDays != DefaultHistoryDays {
		t.Fatalf("LoadConfig = %+v, %v; want history_days %d", cfg, err, DefaultHistoryDays)
	}
	if info := cfg.Effective(Paths{}); !cfg.DHT || !info.DHT || !slices.Equal(info.DHTBootstrap, dht.DefaultBootstrap()) {
		t.Fatalf("DHT settings of an old file: %v, shown as %v %v", cfg.DHT, info.DHT, info.DHTBootstrap)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct{ name, body, want string }{
		{"typo", "nmae = \"x\"\n", "unknown key(s) nmae"},
		{"bad port", "listen_port = 70000\n", "not a port"},
		{"bad duration", "punch_timeout = \"soon\"\n", "duration"},
		{"bad level", "log_level = \"loud\"\n", "log_level"},
		{"bad name", "name = \" padded\"\n", "space"},
		{"not toml", "name = \n", "read config"},
		{"bad size", "min_free_space = \"lots\"\n", "want a number"},
		{"bad unit", "max_staged_per_peer = \"5 gigs\"\n", "unknown unit"},
		{"bad bootstrap", "dht_bootstrap = [\"router\"]\n", "dht_bootstrap"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			os.WriteFile(path, []byte(tc.body), 0o600)
			if _, err := LoadConfig(path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadConfig = %v, want error containing %q", err, tc.want)
			}
		})
	}
	cfg, err := LoadConfig(filepath.Join(t.TempDir(), "missing.toml"))
	if err != nil || cfg.PunchTimeout != DefaultConfig().PunchTimeout {
		t.Fatalf("missing config = %+v, %v; want defaults", cfg, err)
	}
}

func TestResolvePaths(t *testing.T) {
	home := t.TempDir()
	p := ResolvePaths(home)
	for _, f := range []string{p.Config, p.Identity, p.State, p.Socket, p.Log, p.Outbox, p.Downloads} {
		if !strings.HasPrefix(f, home+"/") {
			t.Errorf("%s is not under --home %s", f, home)
		}
	}
	t.Setenv(HomeEnv, home)
	if ResolvePaths("") != p {
		t.Error("$PUNCHDROP_HOME is not used like --home")
	}
	t.Setenv(HomeEnv, "")
	t.Setenv("XDG_CONFIG_HOME", "/x/config")
	t.Setenv("XDG_STATE_HOME", "/x/state")
	t.Setenv("XDG_DATA_HOME", "/x/data")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	x := ResolvePaths("")
	want := Paths{Config: "/x/config/punchdrop/config.toml", Identity: "/x/data/punchdrop/identity.key", State: "/x/state/punchdrop/state.db", Socket: "/run/user/1000/punchdrop/control.sock", Log: "/x/state/punchdrop/punchdrop.log"}
	if x.Config != want.Config || x.Identity != want.Identity || x.State != want.State || x.Socket != want.Socket || x.Log != want.Log {
		t.Errorf("XDG paths = %+v, want %+v", x, want)
	}
}

func TestResolvePeer(t *testing.T) {
	type item struct{ id, name string }
	items := []item{
		{"AAAABBBBCCCC", "bob"},
		{"AAAAXXXXYYYY", "Bob"},
		{"ZZZZ11112222", "carol"},
	}
	keys := func(i item) (string, string) { return i.id, i.name }
	tests := []struct{ arg, wantID, wantErr string }{
		{"ZZZZ11112222", "ZZZZ11112222", ""},
		{"zzzz-1111 2222", "ZZZZ11112222", ""},
		{"carol", "ZZZZ11112222", ""},
		{"CAROL", "ZZZZ11112222", ""},
		{"zz", "ZZZZ11112222", ""},
		{"AAAAB", "AAAABBBBCCCC", ""},
		{"bob", "", "2 peers are named"},
		{"AAAA", "", "matches several peers"},
		{"dave", "", "no peer matches"},
		{"", "", "no peer given"},
	}
	for _, tc := range tests {
		got, err := resolve(tc.arg, items, keys)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("resolve(%q) = %v, %v; want error %q", tc.arg, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.id != tc.wantID {
			t.Errorf("resolve(%q) = %v, %v; want %s", tc.arg, got, err, tc.wantID)
		}
	}
}

func TestConfigSet(t *testing.T) {
	tests := []struct {
		key, value string
		check      func(Config) bool
		wantErr    bool
	}{
		{"name", "alice-laptop", func(c Config) bool { return c.Name == "alice-laptop" }, false},
		{"name", "bad\tname", nil, true},
		{"listen_port", "41641", func(c Config) bool { return c.ListenPort == 41641 }, false},
		{"listen_port", "70000", nil, true},
		{"listen_port", "x", nil, true},
		{"stun_servers", " a.example:3478, b.example:3478 ,", func(c Config) bool {
			return len(c.STUNServers) == 2 && c.STUNServers[1] == "b.example:3478"
		}, false},
		{"stun_servers", "", func(c Config) bool { return c.STUNServers == nil }, false},
		{"relays", "turn:u:p@relay.example.com?transport=tcp, turns:u:p@relay.example.com:443", func(c Config) bool {
			return len(c.Relays) == 2 && c.Relays[1] == "turns:u:p@relay.example.com:443"
		}, false},
		{"relays", "turn:relay.example.com?secret=s3cret", func(c Config) bool { return len(c.Relays) == 1 }, false},
		{"relays", "", func(c Config) bool { return c.Relays == nil }, false},
		{"relays", "relay.example.com:3478", nil, true},
		{"relays", "turn:u:p@relay.example.com,turn:u:q@relay.example.com", nil, true}, // the same relay twice
		{"relays", "turn:u@relay.example.com", nil, true},                              // no password
		{"downloads", "rel/dir", func(c Config) bool { return filepath.IsAbs(c.Downloads) }, false},
		{"outbox", "", func(c Config) bool { return c.Outbox == "" }, false},
		{"punch_timeout", "90s", func(c Config) bool { return c.PunchTimeout.Duration == 90*time.Second }, false},
		{"punch_timeout", "soon", nil, true},
		{"chunk_size", "4194304", func(c Config) bool { return c.ChunkSize == 4<<20 }, false},
		{"chunk_size", "100", nil, true},
		{"chunk_size", "", func(c Config) bool { return c.ChunkSize == DefaultConfig().ChunkSize }, false},
		{"log_level", "debug", func(c Config) bool { return c.LogLevel == "debug" }, false},
		{"log_level", "loud", nil, true},
		{"min_free_space", "1.5 GiB", func(c Config) bool { return c.MinFreeSpace == 3<<29 }, false},
		{"min_free_space", "0", func(c Config) bool { return c.MinFreeSpace == 0 }, false},
		{"min_free_space", "", func(c Config) bool { return c.MinFreeSpace == DefaultConfig().MinFreeSpace }, false},
		{"min_free_space", "much", nil, true},
		{"max_staged_per_peer", "500MB", func(c Config) bool { return c.MaxStagedPerPeer == 500e6 }, false},
		{"max_staged_per_peer", "", func(c Config) bool { return c.MaxStagedPerPeer == DefaultConfig().MaxStagedPerPeer }, false},
		{"max_staged_per_peer", "-1", nil, true},
		{"history_days", "7", func(c Config) bool { return c.HistoryDays == 7 }, false},
		{"history_days", "", func(c Config) bool { return c.HistoryDays == DefaultHistoryDays }, false},
		{"history_days", "0", nil, true},
		{"history_days", "week", nil, true},
		{"dht", "false", func(c Config) bool { return !c.DHT }, false},
		{"dht", "", func(c Config) bool { return c.DHT }, false},
		{"dht", "maybe", nil, true},
		{"dht_bootstrap", "198.18.0.240:6881, dht.example.org:6881", func(c Config) bool {
			return len(c.DHTBootstrap) == 2 && c.DHTBootstrap[1] == "dht.example.org:6881"
		}, false},
		{"dht_bootstrap", "", func(c Config) bool { return c.DHTBootstrap == nil }, false},
		{"dht_bootstrap", "198.18.0.240", nil, true},
		{"lan_discovery", "false", func(c Config) bool { return !c.LANDiscovery }, false},
		{"lan_discovery", "", func(c Config) bool { return c.LANDiscovery }, false},
		{"port_mapping", "false", func(c Config) bool { return !c.PortMapping }, false},
		{"port_mapping", "", func(c Config) bool { return c.PortMapping }, false},
		{"port_mapping", "upnp", nil, true},
		{"congestion", "reno", func(c Config) bool { return c.Congestion == "reno" }, false},
		{"congestion", "", func(c Config) bool { return c.Congestion == "cubic" }, false},
		{"congestion", "bbr", nil, true},
		{"colour", "blue", nil, true},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		err := c.Set(tt.key, tt.value)
		if tt.wantErr {
			if err == nil {
				t.Errorf("Set(%q, %q) accepted", tt.key, tt.value)
			}
			continue
		}
		if err != nil || !tt.check(c) {
			t.Errorf("Set(%q, %q) = %v, config %+v", tt.key, tt.value, err, c)
		}
	}
}

func TestCheckFolders(t *testing.T) {
	p := Paths{Outbox: "/home/u/Punchdrop/Outbox", Downloads: "/home/u/Punchdrop/Downloads"}
	tests := []struct {
		outbox, downloads string
		ok                bool
	}{
		{"", "", true},
		{"/data/out", "/data/in", true},
		{"/data/box", "/data/boxes", true}, // a shared prefix is not nesting
		{"", "/home/u/Punchdrop/Outbox", false},
		{"/data/x", "/data/x/", false},
		{"/data/x/out", "/data/x", false},
		{"/data/x", "/data/x/in", false},
	}
	for _, tt := range tests {
		err := Config{Outbox: tt.outbox, Downloads: tt.downloads}.CheckFolders(p)
		if (err == nil) != tt.ok {
			t.Errorf("outbox %q, downloads %q: %v, want ok %v", tt.outbox, tt.downloads, err, tt.ok)
		}
	}
}
