//go:build linux

package tray

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/punchdrop/punchdrop/agent"
	"github.com/punchdrop/punchdrop/control"
)

// A private desktop session for tests: an X server (Xvfb) for the
// clipboard and the notification daemon, a session bus of our own, a
// StatusNotifierWatcher standing in for the panel, and dunst. Nothing
// touches the user's own session.

// processStartTimeout bounds how long Xvfb, dbus-daemon and dunst may take
// to come up on a loaded 2-core CI box: Xvfb compiles its keymap (xkbcomp)
// as it starts, and took over 10 s once while the lab tests ran beside it.
const processStartTimeout = 30 * time.Second

// requireTools skips the test when a program is missing, or fails it when
// CI=true: CI installs them (.ci/run), so a missing one is a broken setup.
func requireTools(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("missing %s (apt-get install dbus dbus-x11 xvfb xclip dunst)", strings.Join(missing, ", "))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// startProcess starts cmd and stops it (SIGINT, then SIGKILL) when the
// test ends.
func startProcess(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	// A test binary killed by its timeout runs no cleanup; the kernel
	// stops the process then.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
}

// readLine reads the first line a process prints on r.
func readLine(t testing.TB, r io.Reader, what string) string {
	t.Helper()
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n')
		line <- strings.TrimSpace(s)
	}()
	select {
	case s := <-line:
		if s == "" {
			t.Fatalf("%s printed nothing", what)
		}
		return s
	case <-time.After(processStartTimeout):
		t.Fatalf("%s did not start within %s", what, processStartTimeout)
	}
	return ""
}

// startXvfb runs an X server on a free display and returns its name
// (":N"); Xvfb picks the number and writes it to -displayfd.
func startXvfb(t testing.TB) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1024x768x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	startProcess(t, cmd)
	w.Close()
	return ":" + readLine(t, r, "Xvfb")
}

// busConfig is a session bus without service activation, so only the
// programs a test starts answer on it.
const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
`

// startBus runs a private session bus and returns its address.
func startBus(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, fmt.Appendf(nil, busConfig, filepath.Join(dir, "bus")), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dbus-daemon", "--config-file", conf, "--nofork", "--print-address=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	startProcess(t, cmd)
	return readLine(t, out, "dbus-daemon")
}

// busConn opens a private connection to the bus at addr.
func busConn(t testing.TB, addr string) *dbus.Conn {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatalf("connect to test bus: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// waitName waits until name has an owner on the bus.
func waitName(t testing.TB, conn *dbus.Conn, name string) {
	t.Helper()
	deadline := time.Now().Add(processStartTimeout)
	for {
		var has bool
		if err := conn.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&has); err == nil && has {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nobody owns %s after %s", name, processStartTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sniItem is a StatusNotifierItem that registered with the test watcher.
type sniItem struct {
	sender string // its unique bus name
	path   string // its object path
}

// testWatcher is a StatusNotifierWatcher as a panel runs it, reduced to
// what items call.
type testWatcher struct {
	items chan sniItem
}

// RegisterStatusNotifierItem is called by an item; service is its object
// path (as fyne.io/systray sends it) or its bus name.
func (w *testWatcher) RegisterStatusNotifierItem(sender dbus.Sender, service string) *dbus.Error {
	it := sniItem{sender: string(sender), path: service}
	if !strings.HasPrefix(service, "/") {
		it = sniItem{sender: service, path: "/StatusNotifierItem"}
	}
	select {
	case w.items <- it:
	default:
	}
	return nil
}

// RegisterStatusNotifierHost is called by hosts; there are none here.
func (w *testWatcher) RegisterStatusNotifierHost(string) *dbus.Error { return nil }

// startWatcher owns org.kde.StatusNotifierWatcher on the bus at addr.
func startWatcher(t testing.TB, addr string) *testWatcher {
	t.Helper()
	conn := busConn(t, addr)
	w := &testWatcher{items: make(chan sniItem, 8)}
	if err := conn.Export(w, "/StatusNotifierWatcher", watcherName); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName(watcherName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: %v (reply %v)", watcherName, err, reply)
	}
	return w
}

// startDunst runs the dunst notification daemon on display and bus, and
// checks that dunstctl can read its history.
func startDunst(t testing.TB, display, addr string) {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "dunstrc")
	// Notifications stay until closed, so the history holds them all.
	if err := os.WriteFile(conf, []byte("[global]\n    history_length = 100\n[urgency_normal]\n    timeout = 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dunst", "-config", conf)
	cmd.Env = append(os.Environ(), "DISPLAY="+display, "DBUS_SESSION_BUS_ADDRESS="+addr)
	startProcess(t, cmd)
	waitName(t, busConn(t, addr), "org.freedesktop.Notifications")
	if _, err := dunstHistory(addr); err != nil {
		t.Fatalf("dunstctl history: %v", err)
	}
}

// dunstHistory closes the notifications on screen (which moves them to
// dunst's history) and returns the summary and body of every notification
// in the history.
func dunstHistory(addr string) ([]string, error) {
	env := append(os.Environ(), "DBUS_SESSION_BUS_ADDRESS="+addr)
	closeAll := exec.Command("dunstctl", "close-all")
	closeAll.Env = env
	if out, err := closeAll.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dunstctl close-all: %v: %s", err, out)
	}
	hist := exec.Command("dunstctl", "history")
	hist.Env = env
	out, err := hist.Output()
	if err != nil {
		return nil, fmt.Errorf("dunstctl history: %w", toolError(err))
	}
	var h struct {
		Data [][]map[string]struct {
			Data any `json:"data"`
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &h); err != nil {
		return nil, fmt.Errorf("dunstctl history: %w: %s", err, out)
	}
	var notes []string
	for _, group := range h.Data {
		for _, n := range group {
			notes = append(notes, fmt.Sprintf("%v: %v", n["summary"].Data, n["body"].Data))
		}
	}
	return notes, nil
}

// testSession is a running private desktop session.
type testSession struct {
	display, bus string
	watcher      *testWatcher
}

// startSession starts a desktop session and points this process at it
// (DISPLAY, DBUS_SESSION_BUS_ADDRESS, the XDG config folders).
func startSession(t *testing.T) *testSession {
	t.Helper()
	requireTools(t, "Xvfb", "dbus-daemon", "dunst", "dunstctl", "xclip")
	s := &testSession{display: startXvfb(t)}
	s.bus = startBus(t)
	t.Setenv("DISPLAY", s.display)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", s.bus)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_DIRS", t.TempDir())
	s.watcher = startWatcher(t, s.bus)
	startDunst(t, s.display, s.bus)
	return s
}

// clipboardText reads the clipboard the way a user's paste would.
func clipboardText(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("xclip", "-o", "-selection", "clipboard").Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// setClipboard puts text on the clipboard with xclip, which keeps serving
// it in the background until the X server ends. Its output is not read:
// that background xclip would hold the pipe open.
func setClipboard(t testing.TB, text string) {
	t.Helper()
	cmd := exec.Command("xclip", "-in", "-selection", "clipboard")
	cmd.Stdin = strings.NewReader(text)
	if err := cmd.Run(); err != nil {
		t.Fatalf("xclip -in: %v", err)
	}
}

// testAgent is an agent running in this process.
type testAgent struct {
	*control.Client
	home  string
	paths agent.Paths
}

// runAgent runs an agent in this process with its own home; STUN points at
// a loopback port where nothing listens, and the DHT, LAN discovery and
// port mapping are off, so no public server or router is contacted and
// nothing leaves the host.
func runAgent(t testing.TB, name string) *testAgent {
	t.Helper()
	home := t.TempDir()
	cfg := agent.DefaultConfig()
	cfg.LANDiscovery, cfg.PortMapping = false, false
	if err := cfg.Save(agent.ResolvePaths(home).Config); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Options{Home: home, Name: name, Port: -1, STUNServers: []string{"127.0.0.1:9"}, DHTBootstrap: []string{agent.NoDHT}, Stderr: io.Discard})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent %s: %v", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("agent %s did not stop", name)
		}
	})
	a := &testAgent{home: home, paths: agent.ResolvePaths(home)}
	a.Client = control.NewClient(a.paths.Socket)
	deadline := time.Now().Add(processStartTimeout)
	for {
		_, err := a.ID(ctx)
		if err == nil {
			return a
		}
		select {
		case err := <-done:
			t.Fatalf("agent %s stopped: %v", name, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s did not answer: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// execSelf replaces this test process with a fresh run of exe, same
// arguments, current environment.
func execSelf(exe string) error { return syscall.Exec(exe, os.Args, os.Environ()) }
