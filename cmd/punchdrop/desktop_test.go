package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/agent"
	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/testutil"
)

// noDesktop points this process at no session bus.
func noDesktop(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
}

// testHome is a node home whose config points STUN at a loopback port
// where nothing listens and turns the DHT and LAN discovery off, so no
// public server is contacted and nothing leaves the host.
func testHome(t *testing.T) string {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "config.toml"), []byte("stun_servers = [\"127.0.0.1:9\"]\ndht = false\nlan_discovery = false\nport_mapping = false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

// runPunchdrop runs the command line in this process until ctx ends.
func runPunchdrop(ctx context.Context, stderr io.Writer, args ...string) chan error {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(io.Discard)
	root.SetErr(stderr)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	return done
}

func TestNoDesktopRunsAgentInForeground(t *testing.T) {
	noDesktop(t)
	home := testHome(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr testutil.Buffer
	done := runPunchdrop(ctx, &stderr, "--home", home)
	client := control.NewClient(agent.ResolvePaths(home).Socket)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := client.ID(ctx); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("punchdrop returned %v; stderr:\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no agent answering; stderr:\n%s", stderr.String())
		}
	}
	first, _, _ := strings.Cut(stderr.String(), "\n")
	if !strings.Contains(first, "no D-Bus session bus") || !strings.Contains(first, "running the agent in the foreground") {
		t.Errorf("first line %q does not say why there is no tray and what happens instead", first)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent in the foreground: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the foreground agent did not stop")
	}

	// With the agent already running, it says so and returns.
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	agentDone := runPunchdrop(ctx2, io.Discard, "--home", home, "agent")
	for {
		if _, err := client.ID(ctx2); err == nil {
			break
		}
		select {
		case err := <-agentDone:
			t.Fatalf("agent: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	var stderr2 testutil.Buffer
	select {
	case err := <-runPunchdrop(context.Background(), &stderr2, "--home", home):
		if err != nil || !strings.Contains(stderr2.String(), "the agent is already running") {
			t.Errorf("with an agent running: %v, %q", err, stderr2.String())
		}
	case <-time.After(5 * time.Second):
		t.Error("punchdrop with an agent running and no desktop did not return")
	}
	cancel2()
	<-agentDone
}

func TestHelpStillWorks(t *testing.T) {
	var out strings.Builder
	root := newRoot()
	root.SetArgs([]string{"--help"})
	root.SetOut(&out)
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "Run with no command, punchdrop is the desktop app") || !strings.Contains(out.String(), "Available Commands") {
		t.Errorf("help:\n%s", out.String())
	}
	root = newRoot()
	root.SetArgs([]string{"nonsense"})
	root.SetErr(io.Discard)
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("punchdrop nonsense: %v", err)
	}
}

func TestTrayCommand(t *testing.T) {
	got := trayCommand("relative/home")
	if len(got) != 3 || got[1] != "--home" || !filepath.IsAbs(got[2]) || !filepath.IsAbs(got[0]) && got[0] != "punchdrop" {
		t.Errorf("trayCommand = %q", got)
	}
	if got := trayCommand(""); len(got) != 1 {
		t.Errorf("trayCommand without home = %q", got)
	}
}
