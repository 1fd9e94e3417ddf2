//go:build linux

package tray

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/testutil"
)

// Timeouts of the tray test, generous for a loaded 2-core CI box; each
// step takes well under a second here.
const (
	registerTimeout = 10 * time.Second // the tray's item shows up at the watcher
	menuTimeout     = 10 * time.Second // the menu reflects a change
	peerTimeout     = 20 * time.Second // two agents on one machine connect
	noticeTimeout   = 15 * time.Second // a notification reaches dunst
)

// TestMain makes the clipboard library use X11: it picks its tool when the
// package loads, and on a Wayland desktop it would pick wl-copy and talk
// to the user's session instead of the test's X server.
func TestMain(m *testing.M) {
	if os.Getenv("WAYLAND_DISPLAY") != "" {
		os.Unsetenv("WAYLAND_DISPLAY")
		exe, err := os.Executable()
		if err == nil {
			err = execSelf(exe)
		}
		fmt.Fprintln(os.Stderr, "re-run without WAYLAND_DISPLAY:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// trayRan is set once TestTray has run the tray in this process.
var trayRan atomic.Bool

// The tray library keeps its state per process, so one test runs the tray
// and walks through everything a user does with it.
func TestTray(t *testing.T) {
	if trayRan.Swap(true) {
		t.Skip("the tray runs once per process (fyne.io/systray keeps global state); it ran already in this go test -count run")
	}
	sess := startSession(t)
	alice := runAgent(t, "alice")
	bob := runAgent(t, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	aliceID, err := alice.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bobID, err := bob.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var logs testutil.Buffer
	trayCtx, stopTray := context.WithCancel(ctx)
	defer stopTray()
	trayDone := make(chan error, 1)
	go func() {
		trayDone <- Run(trayCtx, Options{
			Socket:    alice.paths.Socket,
			Outbox:    alice.paths.Outbox,
			Downloads: alice.paths.Downloads,
			Command:   []string{"/opt/punch drop/punchdrop", "--home", alice.home},
			Logger:    slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
	}()
	t.Cleanup(func() {
		stopTray()
		select {
		case <-trayDone:
		case <-time.After(5 * time.Second):
			t.Error("the tray did not stop")
		}
		if t.Failed() {
			t.Logf("--- tray log ---\n%s", logs.String())
		}
	})

	// The tray registers its StatusNotifierItem with the watcher.
	var item sniItem
	select {
	case item = <-sess.watcher.items:
	case <-time.After(registerTimeout):
		t.Fatalf("no StatusNotifierItem registered within %s", registerTimeout)
	}
	if item.path != "/StatusNotifierItem" {
		t.Errorf("registered %+v, want the object /StatusNotifierItem", item)
	}
	conn := busConn(t, sess.bus)
	title, err := conn.Object(item.sender, dbus.ObjectPath(item.path)).GetProperty("org.kde.StatusNotifierItem.Title")
	if err != nil || title.Value() != "punchdrop" {
		t.Errorf("item Title = %v, %v; want punchdrop", title, err)
	}
	menu := newTrayMenu(t, conn, item)

	// waitMenu re-reads the menu until cond holds.
	waitMenu := func(what string, cond func(*menuNode) bool) *menuNode {
		t.Helper()
		deadline := time.Now().Add(menuTimeout)
		for {
			root, err := menu.layout(0)
			if err == nil && cond(root) {
				return root
			}
			if time.Now().After(deadline) {
				t.Fatalf("menu: %s: not after %s (err %v); menu:\n%v", what, menuTimeout, err, root)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	root := waitMenu("status lines", func(m *menuNode) bool { return m.find("No peers yet") != nil })
	for _, label := range []string{labelCopy, labelConnect, labelPeers, labelOutbox, labelDownloads, labelPause, labelAutostart, labelQuit} {
		if root.find(label) == nil {
			t.Errorf("menu has no %q item; menu:\n%v", label, root)
		}
	}
	if root.find(labelRequests) != nil {
		t.Errorf("Requests shown with no pending request; menu:\n%v", root)
	}
	if n := root.find("unknown: no STUN server answered"); n == nil || n.enabled() {
		t.Errorf("no NAT status line (disabled) in menu:\n%v", root)
	}

	// Copy my connection string puts alice's on the clipboard.
	menu.click(t, root.find(labelCopy))
	testutil.WaitFor(t, menuTimeout, "alice's connection string on the clipboard", func() bool {
		return clipboardText(t) == aliceID.ConnectionString
	})

	// Connect peer takes bob's string from the clipboard, even inside a
	// chat line.
	setClipboard(t, "here is mine: "+bobID.ConnectionString+" see you")
	menu.click(t, root.find(labelConnect))
	testutil.WaitFor(t, peerTimeout, "bob in alice's peers", func() bool {
		peers, _ := alice.Peers(ctx)
		for _, p := range peers {
			if p.NodeID == bobID.NodeID && p.State != control.StatePending {
				return true
			}
		}
		return false
	})
	waitMenu("bob in the Peers submenu", func(m *menuNode) bool { return m.find(labelPeers, "bob — ", labelSendFile) != nil })

	// A file bob sends arrives with a notification that names it.
	if _, err := bob.Connect(ctx, aliceID.ConnectionString); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "quarterly-report.pdf")
	if err := os.WriteFile(src, []byte("numbers"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, control.SendRequest{Peer: aliceID.NodeID, Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	waitNote(t, sess, "Received quarterly-report.pdf")
	if _, err := os.Stat(filepath.Join(alice.paths.Downloads, "quarterly-report.pdf")); err != nil {
		t.Errorf("the file is not in alice's downloads: %v", err)
	}
	waitMenu("bob connected", func(m *menuNode) bool {
		return m.find("1 of 1 peers connected") != nil && m.find(labelPeers, "bob — connected") != nil
	})

	// A stranger's request shows under Requests; Accept makes it a peer.
	carol := runAgent(t, "carol")
	carolID, err := carol.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Connect(ctx, aliceID.ConnectionString); err != nil {
		t.Fatal(err)
	}
	root = waitMenu("carol's request", func(m *menuNode) bool { return m.find("Requests (1)", "carol", labelAccept) != nil })
	waitNote(t, sess, "carol wants to be your peer")
	menu.click(t, root.find("Requests (1)", "carol", labelAccept))
	testutil.WaitFor(t, peerTimeout, "carol accepted", func() bool {
		peers, _ := alice.Peers(ctx)
		for _, p := range peers {
			if p.NodeID == carolID.NodeID && p.State != control.StatePending {
				return true
			}
		}
		return false
	})
	waitMenu("carol in Peers, Requests gone", func(m *menuNode) bool {
		return m.find(labelPeers, "carol — ") != nil && m.find(labelRequests) == nil
	})

	// Start at login writes the autostart entry and removes it again.
	entry := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "autostart", "punchdrop.desktop")
	menu.click(t, root.find(labelAutostart))
	root = waitMenu("Start at login checked", func(m *menuNode) bool { return m.find(labelAutostart).toggled() })
	b, err := os.ReadFile(entry)
	if err != nil {
		t.Fatalf("autostart entry: %v", err)
	}
	if want := `Exec="/opt/punch drop/punchdrop" --home ` + alice.home; !strings.Contains(string(b), want) {
		t.Errorf("autostart entry lacks %q:\n%s", want, b)
	}
	menu.click(t, root.find(labelAutostart))
	root = waitMenu("Start at login unchecked", func(m *menuNode) bool { return !m.find(labelAutostart).toggled() })
	if _, err := os.Stat(entry); !os.IsNotExist(err) {
		t.Errorf("autostart entry still there after unchecking: %v", err)
	}

	// Pause transfers: the item is checked and the agent says it is
	// paused.
	menu.click(t, root.find(labelPause))
	root = waitMenu("Pause transfers checked", func(m *menuNode) bool { return m.find(labelPause).toggled() })
	if st, err := alice.Status(ctx); err != nil || !st.Paused {
		t.Fatalf("after Pause transfers the agent's status: paused %v, %v", st.Paused, err)
	}

	notes, _ := dunstHistory(sess.bus)
	t.Logf("notifications shown: %q", notes)
	t.Logf("menu at the end:\n%v", root)

	// Quit ends Run.
	menu.clickQuit(t, root.find(labelQuit))
	select {
	case err := <-trayDone:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		trayDone <- nil // for the cleanup
	case <-time.After(5 * time.Second):
		t.Fatal("Quit did not end Run")
	}
}

// waitNote waits until dunst has shown a notification containing text.
func waitNote(t *testing.T, sess *testSession, text string) {
	t.Helper()
	deadline := time.Now().Add(noticeTimeout)
	for {
		notes, err := dunstHistory(sess.bus)
		if err == nil && containsNote(notes, text) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notification with %q after %s (err %v); dunst has: %q", text, noticeTimeout, err, notes)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func containsNote(notes []string, text string) bool {
	for _, n := range notes {
		if strings.Contains(n, text) {
			return true
		}
	}
	return false
}
