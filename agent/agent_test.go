package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/store"
)

// runAgent runs an agent in this process with its own home; STUN points at
// a loopback port where nothing listens, and the DHT, LAN discovery and
// port mapping are off, so no public server or router is contacted and
// nothing leaves the host.
func runAgent(t testing.TB, name string) (*control.Client, string) {
	t.Helper()
	home := t.TempDir()
	c, _ := startAgent(t, name, home)
	return c, home
}

// startTimeout bounds the wait for a new agent to answer: it does in
// milliseconds, but checking a state file of a long history takes
// seconds (BenchmarkHistory).
const startTimeout = 30 * time.Second

// startAgent runs an agent on home until stop is called or the test
// ends; stop waits for it to finish.
func startAgent(t testing.TB, name, home string) (c *control.Client, stop func()) {
	t.Helper()
	return startAgentWith(t, Options{Home: home, Name: name, Port: -1, STUNServers: []string{"127.0.0.1:9"}, DHTBootstrap: []string{NoDHT}, Stderr: io.Discard})
}

// startAgentWith is startAgent with the options given. LAN discovery and
// port mapping are always off: they would announce on the host's real
// networks and ask its real router.
func startAgentWith(t testing.TB, opts Options) (c *control.Client, stop func()) {
	t.Helper()
	name, home := opts.Name, opts.Home
	writeConfig(t, home, "lan_discovery", "false", "port_mapping", "false")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, opts) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent %s: %v", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("agent %s did not stop", name)
		}
	}
	t.Cleanup(stop)
	c = control.NewClient(ResolvePaths(home).Socket)
	deadline := time.Now().Add(startTimeout)
	for {
		if _, err := c.ID(ctx); err == nil {
			return c, stop
		} else if time.Now().After(deadline) {
			t.Fatalf("agent %s did not answer: %v", name, err)
		}
		select {
		case err := <-done:
			t.Fatalf("agent %s stopped: %v", name, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// writeConfig changes keys of the config in home ("key", "value", ...),
// as `config set` does without telling the agent.
func writeConfig(t testing.TB, home string, kv ...string) {
	t.Helper()
	path := ResolvePaths(home).Config
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if err := cfg.Set(kv[i], kv[i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := cfg.Save(path); err != nil {
		t.Fatal(err)
	}
}

func TestAgentsConnectOverControlAPI(t *testing.T) {
	alice, aliceHome := runAgent(t, "alice")
	bob, _ := runAgent(t, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	aliceID, err := alice.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bobID, err := bob.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if aliceID.ListenPort == 0 || aliceID.NAT.Mapping != "unknown" {
		t.Fatalf("id = %+v", aliceID)
	}
	for _, f := range []string{"identity.key", "state.db", "control.sock", "config.toml", "punchdrop.log"} {
		fi, err := os.Stat(filepath.Join(aliceHome, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
	}

	stream, err := bob.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	events := make(chan control.Event, 16)
	go func() {
		for {
			ev, err := stream.Next()
			if err != nil {
				return
			}
			events <- ev
		}
	}()

	if _, err := alice.Connect(ctx, bobID.ConnectionString); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Connect(ctx, aliceID.ConnectionString); err != nil {
		t.Fatal(err)
	}
	if err := alice.SendMessage(ctx, control.MsgRequest{Peer: "bob", Text: "hi bob"}); err != nil {
		t.Fatal(err)
	}
	msgs, err := bob.Messages(ctx)
	if err != nil || len(msgs) != 1 || msgs[0].Text != "hi bob" || msgs[0].FromName != "alice" || msgs[0].From != aliceID.NodeID {
		t.Fatalf("bob's messages = %+v, %v", msgs, err)
	}
	for {
		select {
		case ev := <-events:
			if ev.Kind == control.EventMessage && ev.Message.Text == "hi bob" {
				goto sawEvent
			}
		case <-ctx.Done():
			t.Fatal("no message event on bob's event stream")
		}
	}
sawEvent:
	peers, err := alice.Peers(ctx)
	if err != nil || len(peers) != 1 || peers[0].State != control.StateConnected || peers[0].Name != "bob" {
		t.Fatalf("alice's peers = %+v, %v", peers, err)
	}
	// It says where the session's address came from, and when bob was
	// last heard from.
	if p := peers[0]; p.FoundVia == "" || p.LastSeen == nil || time.Since(*p.LastSeen) > time.Minute {
		t.Fatalf("found_via %q, last_seen %v", p.FoundVia, p.LastSeen)
	}
	if err := alice.SendMessage(ctx, control.MsgRequest{Peer: "bob", Text: ""}); err == nil {
		t.Fatal("empty message accepted")
	}
	if _, err := alice.Connect(ctx, aliceID.ConnectionString); err == nil {
		t.Fatal("connecting to oneself accepted")
	}
}

func TestSecondAgentOnSameHomeIsRefused(t *testing.T) {
	_, home := runAgent(t, "alice")
	err := Run(context.Background(), Options{Home: home, Port: -1, STUNServers: []string{"127.0.0.1:9"}, DHTBootstrap: []string{NoDHT}, Stderr: io.Discard})
	if err == nil {
		t.Fatal("a second agent started on the same home")
	}
	if !errors.Is(err, store.ErrLocked) {
		t.Fatalf("second agent: %v, want the state-in-use error", err)
	}
}

func TestConfigReload(t *testing.T) {
	c, home := runAgent(t, "alice")
	ctx := t.Context()
	path := ResolvePaths(home).Config
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	free, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := free.LocalAddr().(*net.UDPAddr).Port
	free.Close()
	for _, kv := range [][2]string{{"name", "alice2"}, {"log_level", "debug"}, {"chunk_size", "65536"}, {"listen_port", strconv.Itoa(port)}} {
		if err := cfg.Set(kv[0], kv[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := cfg.Save(path); err != nil {
		t.Fatal(err)
	}
	res, err := c.ReloadConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Applied, []string{"name", "log_level", "chunk_size", "listen_port"}) || !res.Restarting {
		t.Fatalf("reload = %+v", res)
	}
	// The agent starts over on the new port; its socket answers again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		id, err := c.ID(ctx)
		if err == nil && id.ListenPort == port {
			if id.Name != "alice2" || !strings.Contains(id.ConnectionString, "name=alice2") {
				t.Fatalf("after reload: %+v", id)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after reload: %+v, %v; want port %d", id, err, port)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSavedPortTakenMeanwhile: another program took the agent's saved
// port while it was down. The agent starts on another port, says so in its
// log, and keeps the saved one for the next start; a port given with
// --port is not moved.
func TestSavedPortTakenMeanwhile(t *testing.T) {
	home := t.TempDir()
	_, stop := startAgent(t, "alice", home)
	stop()
	path := ResolvePaths(home).Config
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	taken, err := net.ListenUDP("udp4", &net.UDPAddr{Port: cfg.ListenPort})
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	c, _ := startAgent(t, "alice", home)
	id, err := c.ID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if id.ListenPort == cfg.ListenPort || id.ListenPort == 0 {
		t.Fatalf("agent listens on %d; the saved port %d is taken", id.ListenPort, cfg.ListenPort)
	}
	log, _ := os.ReadFile(ResolvePaths(home).Log)
	if !strings.Contains(string(log), "the saved UDP port is taken") {
		t.Error("the log does not say the port moved")
	}
	if now, err := LoadConfig(path); err != nil || now.ListenPort != cfg.ListenPort {
		t.Fatalf("saved port now %d, %v; want %d kept", now.ListenPort, err, cfg.ListenPort)
	}
	err = Run(t.Context(), Options{Home: t.TempDir(), Port: cfg.ListenPort, STUNServers: []string{"127.0.0.1:9"}, DHTBootstrap: []string{NoDHT}, Stderr: io.Discard})
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("--port on a taken port: %v, want address in use", err)
	}
}
