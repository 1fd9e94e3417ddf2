package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/punchdrop/punchdrop/bytesize"
	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/dht"
	"github.com/punchdrop/punchdrop/nat"
	"github.com/punchdrop/punchdrop/session"
	"github.com/punchdrop/punchdrop/transfer"
)

// Config is the user's configuration, kept in config.toml. Empty fields
// take the defaults documented in the file itself.
type Config struct {
	Name        string   `toml:"name"`
	ListenPort  int      `toml:"listen_port"`
	STUNServers []string `toml:"stun_servers"`
	// Relays are TURN relay URLs (package relay); they hold credentials.
	Relays       []string `toml:"relays"`
	Outbox       string   `toml:"outbox"`
	Downloads    string   `toml:"downloads"`
	AfterSend    string   `toml:"after_send"`
	QuietPeriod  Duration `toml:"quiet_period"`
	PeerFolders  bool     `toml:"downloads_per_peer"`
	PunchTimeout Duration `toml:"punch_timeout"`
	ChunkSize    int      `toml:"chunk_size"`
	// Lanes is how many extra connections a file is striped over,
	// besides the session's own (0: every file on one connection).
	Lanes int `toml:"lanes"`
	// Congestion is how connections answer loss (session.Congestion).
	Congestion string `toml:"congestion"`
	LogLevel   string `toml:"log_level"`
	// MinFreeSpace is the free space incoming files never eat into.
	MinFreeSpace bytesize.Size `toml:"min_free_space"`
	// MaxStagedPerPeer bounds what one peer may hold in unfinished
	// incoming files, each counted at its full size.
	MaxStagedPerPeer bytesize.Size `toml:"max_staged_per_peer"`
	// HistoryDays is how long finished transfers are remembered.
	HistoryDays int `toml:"history_days"`
	// DHT publishes where the node can be reached, and finds peers that
	// moved, on the BitTorrent DHT (package finder).
	DHT bool `toml:"dht"`
	// DHTBootstrap lists the DHT nodes to join through ("host:port");
	// empty means dht.DefaultBootstrap, the mainline DHT's routers.
	DHTBootstrap []string `toml:"dht_bootstrap"`
	// LANDiscovery announces the node to its peers on the LAN, and hears
	// theirs, by multicast (package lan).
	LANDiscovery bool `toml:"lan_discovery"`
	// PortMapping asks the router to forward the node's UDP port (PCP,
	// NAT-PMP or UPnP; package portmap), which makes it reachable
	// behind a NAT that no punching gets through.
	PortMapping bool `toml:"port_mapping"`
}

// History kept of finished transfers, in days.
const (
	// DefaultHistoryDays is a month: long enough for any look back at
	// what was sent, and for a sender that lost our confirmation of a
	// file to finish without sending it again.
	DefaultHistoryDays = 30
	// maxHistoryDays is ten years: status shows a day, so a longer
	// history is never read, only kept.
	maxHistoryDays = 3650
)

// DefaultLanes is how many extra connections (lanes) a file goes on
// besides the session's own: each has a congestion controller of its
// own, and under random loss they move about as many times more as
// there are of them, while on a clean path they cost nothing
// measurable. BenchmarkRealPaths, 100 Mbit/s, 96 MiB, MiB/s with CUBIC
// emulating 8 connections (session.CongestionCubic), croc 6.4-9.0:
//
//	               50 ms 0.5 %   50 ms 2 %   150 ms 0.5 %   150 ms 2 %
//	 4 lanes           10.5         6.5          6.5           2.7
//	 8 lanes           10.8        10.5          9.2           4.6
//	16 lanes           10.3        10.2          8.9           7.5
//
// (with NewReno, 16 lanes: 8.3, 4.3, 3.2, 1.8). So as many as a file
// takes (transfer.MaxLanes); a peer's handshake limits take the
// session's own and all of them from one address at once.
const DefaultLanes = 16

// Duration is a time.Duration written as "60s" in the config.
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration such as "90s" or "2m".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	d.Duration = v
	return nil
}

// MarshalText prints the duration the way UnmarshalText reads it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// configTemplate is what a new config.toml looks like: every key with a
// comment, so a person can edit it without reading docs.
var configTemplate = template.Must(template.New("config").Parse(`# punchdrop configuration. Edit while the agent is stopped, or use
# "punchdrop config set". Empty values mean the default.

# Display name sent to peers with your connection string.
name = {{printf "%q" .Name}}

# UDP port punchdrop listens on. It was picked at random on first start and
# is kept so that your connection string stays valid across restarts.
listen_port = {{.ListenPort}}

# STUN servers ("host:port") used to learn your public address and NAT type.
# Empty means a few well-known public servers.
stun_servers = [{{range $i, $s := .STUNServers}}{{if $i}}, {{end}}{{printf "%q" $s}}{{end}}]

# TURN relays, for peers that no direct path reaches (a strict NAT on both
# sides, or a network that drops UDP). Only one of two peers needs one; the
# relay sees only encrypted traffic, and sessions move to a direct path as
# soon as one opens. Each is a URL (%-escape a "," or "@" in a password):
#   "turn:USER:PASS@HOST[:PORT]"                 long-term credentials (UDP)
#   "turn:USER:PASS@HOST[:PORT]?transport=tcp"   over TCP, where UDP is blocked
#   "turns:USER:PASS@HOST[:PORT]"                over TLS (5349 unless given; 443 gets through most firewalls)
#   "turn:HOST[:PORT]?secret=SECRET"             time-limited credentials from a shared secret (TURN REST API)
# Empty means no relay.
relays = [{{range $i, $s := .Relays}}{{if $i}}, {{end}}{{printf "%q" $s}}{{end}}]

# Folders. Empty means the defaults (under --home, or ~/Punchdrop).
# A file or folder dropped into the outbox goes to every peer; one dropped
# into Outbox/<peer name>/ goes to that peer only.
outbox = {{printf "%q" .Outbox}}
downloads = {{printf "%q" .Downloads}}

# What happens to a file in the outbox once every peer has confirmed it:
# "move" (into Outbox/Sent/), "keep" (left in place, not sent again) or
# "delete".
after_send = {{printf "%q" .AfterSend}}

# How long a dropped file must stay unchanged before it is sent, so that a
# file still being copied is not sent half-done.
quiet_period = "{{.QuietPeriod}}"

# Put received files into a subfolder per peer (Downloads/<peer name>/).
downloads_per_peer = {{.PeerFolders}}

# How long to try to reach a peer before reporting it unreachable.
punch_timeout = "{{.PunchTimeout}}"

# Size in bytes of the pieces files are sent in; each is hashed and
# acknowledged on its own, and a resume re-sends at most the ones in flight.
chunk_size = {{.ChunkSize}}

# Extra connections a file is striped over besides the session's own, 0 to
# {{.MaxLanes}}: on a lossy path (Wi-Fi, mobile) each one adds about as much speed as
# one connection has; 0 sends every file on one connection.
lanes = {{.Lanes}}

# How connections answer packet loss: "cubic" keeps speed on lossy Wi-Fi and
# mobile paths, where a lost packet rarely means a full link; "reno" backs
# off like one TCP connection. With lanes = 0 as well, punchdrop shares a
# busy uplink like a single TCP connection instead of taking most of it.
# Changing it restarts the agent's network side.
congestion = {{printf "%q" .Congestion}}

# Log level: debug, info, warn or error.
log_level = {{printf "%q" .LogLevel}}

# Sizes below are in bytes, or with a unit: "2GiB", "500MB", "1.5 GiB".
# Free space that received files never eat into: a file that would leave
# less is refused ("not enough disk space") and its sender tries again
# later.
min_free_space = "{{.MinFreeSpace}}"

# The most one peer may have on its way to you at once: the full sizes of
# its files not yet complete. Beyond it, its next file waits.
max_staged_per_peer = "{{.MaxStagedPerPeer}}"

# How many days finished transfers (sent, failed and received) are
# remembered; older ones are forgotten, so the state file stops growing.
# Files themselves are never touched.
history_days = {{.HistoryDays}}

# Publish where you can be reached on the BitTorrent DHT, and look there
# for peers that moved, so that a pairing lasts when both sides change
# address while apart. What is published is encrypted and signed with a
# key that changes daily: only holders of your connection string can find
# and read it. false keeps to the addresses peers already know.
dht = {{.DHT}}

# DHT nodes ("host:port") to join the DHT through. Empty means the public
# mainline DHT's well-known routers; list your own "punchdrop dht-node"s
# for a private network.
dht_bootstrap = [{{range $i, $s := .DHTBootstrap}}{{if $i}}, {{end}}{{printf "%q" $s}}{{end}}]

# Tell your peers on the same local network where you are, and hear them,
# by multicast: two peers on one LAN find each other within seconds, with
# no internet at all. What is sent is encrypted and signed: only your
# peers can read it.
lan_discovery = {{.LANDiscovery}}

# Ask your router to forward punchdrop's UDP port (PCP, NAT-PMP or UPnP,
# whichever it answers), renewed while the agent runs and deleted when it
# stops: peers then reach you directly even behind a strict (symmetric)
# NAT. "punchdrop nat" shows what the router mapped. false asks nothing.
port_mapping = {{.PortMapping}}
`))

// DefaultConfig returns the configuration of a new node.
func DefaultConfig() Config {
	return Config{
		PunchTimeout:     Duration{session.DefaultPunchTimeout},
		ChunkSize:        transfer.DefaultChunkSize,
		Lanes:            DefaultLanes,
		Congestion:       string(session.CongestionCubic),
		AfterSend:        AfterSendMove,
		QuietPeriod:      Duration{DefaultQuietPeriod},
		LogLevel:         "info",
		MinFreeSpace:     bytesize.Size(transfer.DefaultMinFree),
		MaxStagedPerPeer: bytesize.Size(transfer.DefaultMaxStagedPerPeer),
		HistoryDays:      DefaultHistoryDays,
		DHT:              true,
		LANDiscovery:     true,
		PortMapping:      true,
	}
}

// MaxLanes is the most lanes the config may ask for (the config file
// says so).
func (Config) MaxLanes() int { return transfer.MaxLanes }

// DiskLimits are the limits the config puts on what peers may take of
// the disk.
func (c Config) DiskLimits() transfer.DiskLimits {
	return transfer.DiskLimits{MinFree: int64(c.MinFreeSpace), MaxStagedPerPeer: int64(c.MaxStagedPerPeer)}
}

// LoadConfig reads path, or returns DefaultConfig when it does not exist.
// Unknown keys are an error, so a typo does not silently do nothing.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	md, err := toml.DecodeFile(path, &cfg)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultConfig(), nil
	}
	if err != nil {
		return cfg, fmt.Errorf("read config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return cfg, fmt.Errorf("read config %s: unknown key(s) %s", path, strings.Join(keys, ", "))
	}
	return cfg, cfg.Validate()
}

// Validate checks the values a person may have typed.
func (c Config) Validate() error {
	if c.ListenPort < 0 || c.ListenPort > 65535 {
		return fmt.Errorf("config: listen_port %d is not a port", c.ListenPort)
	}
	if c.Name != "" {
		if err := session.CheckName(c.Name); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	if _, err := parseRelays(c.Relays); err != nil {
		return fmt.Errorf("config: relays: %w", err)
	}
	if c.PunchTimeout.Duration < 0 {
		return fmt.Errorf("config: punch_timeout is negative")
	}
	if c.ChunkSize < transfer.MinChunkSize || c.ChunkSize > transfer.MaxChunkSize {
		return fmt.Errorf("config: chunk_size %d is outside %d..%d", c.ChunkSize, transfer.MinChunkSize, transfer.MaxChunkSize)
	}
	if c.Lanes < 0 || c.Lanes > transfer.MaxLanes {
		return fmt.Errorf("config: lanes %d is outside 0..%d", c.Lanes, transfer.MaxLanes)
	}
	if err := session.Congestion(c.Congestion).Check(); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	switch c.LogLevel {
	case "", "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log_level %q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.AfterSend {
	case "", AfterSendMove, AfterSendKeep, AfterSendDelete:
	default:
		return fmt.Errorf("config: after_send %q is not move, keep or delete", c.AfterSend)
	}
	if c.QuietPeriod.Duration < 0 || c.QuietPeriod.Duration > time.Hour {
		return fmt.Errorf("config: quiet_period %s is outside 0s..1h", c.QuietPeriod)
	}
	if c.MinFreeSpace < 0 || c.MaxStagedPerPeer < 0 {
		return fmt.Errorf("config: min_free_space and max_staged_per_peer cannot be negative")
	}
	if c.HistoryDays < 1 || c.HistoryDays > maxHistoryDays {
		return fmt.Errorf("config: history_days %d is outside 1..%d", c.HistoryDays, maxHistoryDays)
	}
	for _, hp := range c.DHTBootstrap {
		if err := dht.CheckBootstrap(hp); err != nil {
			return fmt.Errorf("config: dht_bootstrap: %w", err)
		}
	}
	return nil
}

// CheckFolders refuses an outbox and a downloads folder that are the
// same or inside one another: received files would be sent on, back and
// forth between peers for ever.
func (c Config) CheckFolders(p Paths) error {
	out := filepath.Clean(cmpOr(c.Outbox, p.Outbox))
	down := filepath.Clean(cmpOr(c.Downloads, p.Downloads))
	within := func(a, b string) bool {
		rel, err := filepath.Rel(b, a)
		return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
	}
	if within(out, down) || within(down, out) {
		return fmt.Errorf("config: the outbox (%s) and the downloads folder (%s) must be apart: received files would be sent on", out, down)
	}
	return nil
}

// Save writes the config to path atomically (temporary file, rename).
func (c Config) Save(path string) error {
	var buf bytes.Buffer
	if err := configTemplate.Execute(&buf, c); err != nil {
		return fmt.Errorf("render config: %w", err)
	}
	if err := writeAtomic(path, buf.Bytes()); err != nil {
		return fmt.Errorf("save config: %w", err)
	}
	return nil
}

// writeAtomic replaces path with data (mode 0600) so that a crash at any
// moment leaves the old file or the new one: the data goes to a temporary
// file of its own (two writers never share one), is flushed, and is
// renamed over path, and the rename is flushed too.
func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp") // 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// ConfigKeys are the keys `punchdrop config set` changes, in file order.
var ConfigKeys = []string{"name", "listen_port", "stun_servers", "relays", "outbox", "downloads", "after_send", "quiet_period", "downloads_per_peer", "punch_timeout", "chunk_size", "lanes", "congestion", "log_level", "min_free_space", "max_staged_per_peer", "history_days", "dht", "dht_bootstrap", "lan_discovery", "port_mapping"}

// Set changes one key from its text form and checks the result.
// stun_servers, relays and dht_bootstrap take a comma-separated list; an
// empty value restores a key's default.
func (c *Config) Set(key, value string) error {
	var err error
	switch key {
	case "name":
		c.Name = value
	case "listen_port":
		c.ListenPort, err = strconv.Atoi(cmpOr(value, "0"))
	case "stun_servers":
		c.STUNServers = splitList(value)
	case "relays":
		c.Relays = splitList(value)
	case "dht_bootstrap":
		c.DHTBootstrap = splitList(value)
	case "dht":
		c.DHT, err = strconv.ParseBool(cmpOr(value, "true"))
	case "lan_discovery":
		c.LANDiscovery, err = strconv.ParseBool(cmpOr(value, "true"))
	case "port_mapping":
		c.PortMapping, err = strconv.ParseBool(cmpOr(value, "true"))
	case "outbox", "downloads":
		if value != "" {
			value, err = filepath.Abs(value)
		}
		if key == "outbox" {
			c.Outbox = value
		} else {
			c.Downloads = value
		}
	case "after_send":
		c.AfterSend = cmpOr(value, AfterSendMove)
	case "quiet_period":
		c.QuietPeriod.Duration, err = time.ParseDuration(cmpOr(value, DefaultQuietPeriod.String()))
	case "downloads_per_peer":
		c.PeerFolders, err = strconv.ParseBool(cmpOr(value, "false"))
	case "punch_timeout":
		c.PunchTimeout.Duration, err = time.ParseDuration(cmpOr(value, session.DefaultPunchTimeout.String()))
	case "chunk_size":
		c.ChunkSize, err = strconv.Atoi(cmpOr(value, strconv.Itoa(transfer.DefaultChunkSize)))
	case "lanes":
		c.Lanes, err = strconv.Atoi(cmpOr(value, strconv.Itoa(DefaultLanes)))
	case "congestion":
		c.Congestion = cmpOr(value, string(session.CongestionCubic))
	case "log_level":
		c.LogLevel = cmpOr(value, "info")
	case "min_free_space":
		c.MinFreeSpace, err = bytesize.Parse(cmpOr(value, bytesize.Size(transfer.DefaultMinFree).String()))
	case "max_staged_per_peer":
		c.MaxStagedPerPeer, err = bytesize.Parse(cmpOr(value, bytesize.Size(transfer.DefaultMaxStagedPerPeer).String()))
	case "history_days":
		c.HistoryDays, err = strconv.Atoi(cmpOr(value, strconv.Itoa(DefaultHistoryDays)))
	default:
		return fmt.Errorf("config: unknown key %q; the keys are %s", key, strings.Join(ConfigKeys, ", "))
	}
	if err != nil {
		return fmt.Errorf("config: %s: %w", key, err)
	}
	return c.Validate()
}

// splitList reads a comma-separated list, spaces and empty items left
// out; nil if nothing is left.
func splitList(value string) []string {
	var out []string
	for _, s := range strings.Split(value, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func cmpOr(v, dflt string) string {
	if v == "" {
		return dflt
	}
	return v
}

// Effective lists every key with the value the agent uses, defaults
// filled in from paths.
func (c Config) Effective(p Paths) control.ConfigInfo {
	stun := c.STUNServers
	if len(stun) == 0 {
		stun = nat.DefaultSTUNServers()
	}
	relays := []string{}
	servers, _ := parseRelays(c.Relays)
	for _, srv := range servers {
		relays = append(relays, srv.String())
	}
	bootstrap := c.DHTBootstrap
	if len(bootstrap) == 0 {
		bootstrap = dht.DefaultBootstrap()
	}
	return control.ConfigInfo{
		Name: c.Name, ListenPort: c.ListenPort, STUNServers: stun, Relays: relays,
		DHT: c.DHT, DHTBootstrap: bootstrap, LANDiscovery: c.LANDiscovery,
		PortMapping: c.PortMapping,
		Outbox:      cmpOr(c.Outbox, p.Outbox), Downloads: cmpOr(c.Downloads, p.Downloads),
		AfterSend: cmpOr(c.AfterSend, AfterSendMove), QuietPeriod: c.QuietPeriod.String(), DownloadsPerPeer: c.PeerFolders,
		PunchTimeout: c.PunchTimeout.String(), ChunkSize: c.ChunkSize, Lanes: c.Lanes, Congestion: cmpOr(c.Congestion, string(session.CongestionCubic)), LogLevel: cmpOr(c.LogLevel, "info"),
		MinFreeSpace: c.MinFreeSpace.String(), MaxStagedPerPeer: c.MaxStagedPerPeer.String(),
		HistoryDays: c.HistoryDays,
		File:        p.Config,
	}
}
