//go:build linux

package tray

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/testutil"
)

func TestCheckDesktopWithoutSessionBus(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "")
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir()) // no "bus" socket in it
	err := CheckDesktop(context.Background(), time.Second)
	if !errors.Is(err, ErrNoDesktop) || !strings.Contains(err.Error(), "no D-Bus session bus") {
		t.Fatalf("CheckDesktop = %v, want no session bus", err)
	}
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+t.TempDir()+"/nothing")
	if err := CheckDesktop(context.Background(), time.Second); !errors.Is(err, ErrNoDesktop) || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("CheckDesktop on a dead bus = %v", err)
	}
}

func TestCheckDesktopWaitsForTrayHost(t *testing.T) {
	requireTools(t, "dbus-daemon")
	bus := startBus(t)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", bus)

	// No watcher: an error after the wait, saying what is missing.
	const wait = 300 * time.Millisecond
	start := time.Now()
	err := CheckDesktop(context.Background(), wait)
	if !errors.Is(err, ErrNoDesktop) || !strings.Contains(err.Error(), "no tray host") {
		t.Fatalf("CheckDesktop without a watcher = %v", err)
	}
	if took := time.Since(start); took < wait || took > wait+2*time.Second {
		t.Errorf("CheckDesktop took %s, want about %s", took, wait)
	}

	// A watcher that appears while it waits (a panel starting at login).
	result := make(chan error, 1)
	go func() { result <- CheckDesktop(context.Background(), 5*time.Second) }()
	time.Sleep(200 * time.Millisecond)
	startWatcher(t, bus)
	if err := <-result; err != nil {
		t.Fatalf("CheckDesktop with a late watcher = %v", err)
	}
	// And one that is there already.
	if err := CheckDesktop(context.Background(), 0); err != nil {
		t.Fatalf("CheckDesktop with a watcher = %v", err)
	}
}

func TestNotificationsWithoutDaemonAreLogged(t *testing.T) {
	requireTools(t, "dbus-daemon")
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", startBus(t)) // nobody owns org.freedesktop.Notifications
	var logs testutil.Buffer
	n := newNotifier(slog.New(slog.NewTextHandler(&logs, nil)))
	defer n.close()
	n.show(note{summary: "Received report.pdf", body: "7 B, from bob"}, map[string]sentNote{})
	if s := logs.String(); !strings.Contains(s, "Received report.pdf") || !strings.Contains(s, "no notification daemon") {
		t.Fatalf("log:\n%s", s)
	}

	// And with no bus at all.
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+t.TempDir()+"/nothing")
	var logs2 testutil.Buffer
	n2 := newNotifier(slog.New(slog.NewTextHandler(&logs2, nil)))
	defer n2.close()
	n2.show(note{summary: "Message from bob"}, map[string]sentNote{})
	if s := logs2.String(); !strings.Contains(s, "Message from bob") || !strings.Contains(s, "only be logged") {
		t.Fatalf("log without a bus:\n%s", s)
	}
}
