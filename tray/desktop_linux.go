//go:build linux

package tray

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/godbus/dbus/v5"
)

// D-Bus names the tray depends on.
const (
	watcherName   = "org.kde.StatusNotifierWatcher" // the tray host's registry
	fileManager   = "org.freedesktop.FileManager1"
	fileManagerOb = "/org/freedesktop/FileManager1"
)

// fileManagerTimeout bounds the ShowItems call; a file manager that has to
// start may take a moment, and otherwise we fall back to xdg-open.
const fileManagerTimeout = 5 * time.Second

// CheckDesktop returns nil when a tray icon can be shown here: a session
// bus answers and a StatusNotifierWatcher (the tray host) owns its name on
// it, waiting up to wait for one to appear. Otherwise it returns an error
// wrapping ErrNoDesktop that says what is missing.
func CheckDesktop(ctx context.Context, wait time.Duration) error {
	if !sessionBusConfigured() {
		return fmt.Errorf("%w: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)", ErrNoDesktop)
	}
	conn, err := dbus.ConnectSessionBus(dbus.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("%w: cannot reach the D-Bus session bus: %v", ErrNoDesktop, err)
	}
	defer conn.Close()
	if err := conn.AddMatchSignalContext(ctx,
		dbus.WithMatchInterface("org.freedesktop.DBus"),
		dbus.WithMatchMember("NameOwnerChanged"),
		dbus.WithMatchArg(0, watcherName),
	); err != nil {
		return fmt.Errorf("%w: session bus: %v", ErrNoDesktop, err)
	}
	signals := make(chan *dbus.Signal, 4)
	conn.Signal(signals)
	var has bool
	if err := conn.BusObject().CallWithContext(ctx, "org.freedesktop.DBus.NameHasOwner", 0, watcherName).Store(&has); err != nil {
		return fmt.Errorf("%w: session bus: %v", ErrNoDesktop, err)
	}
	if has {
		return nil
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case sig := <-signals:
			if sig != nil && len(sig.Body) == 3 {
				if owner, _ := sig.Body[2].(string); owner != "" {
					return nil
				}
			}
		case <-timer.C:
			return fmt.Errorf("%w: no tray host (StatusNotifierWatcher) on the session bus after %s", ErrNoDesktop, wait)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sessionBusConfigured reports whether a session bus address is known
// without autolaunching one: godbus would otherwise run dbus-launch and
// start a private bus that no desktop listens on.
func sessionBusConfigured() bool {
	if os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		return true
	}
	if rt := os.Getenv("XDG_RUNTIME_DIR"); rt != "" {
		if _, err := os.Stat(filepath.Join(rt, "bus")); err == nil {
			return true
		}
	}
	return false
}

// openPath opens a file or folder with the desktop's default application.
func openPath(path string) error {
	cmd := exec.Command("xdg-open", path)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("open %s: %w (install xdg-utils)", path, err)
	}
	go cmd.Wait() // xdg-open returns once the application started
	return nil
}

// showInFolder asks the file manager to show paths selected in their
// folder (org.freedesktop.FileManager1.ShowItems), or opens the folder of
// the first one when no file manager answers.
func showInFolder(ctx context.Context, conn *dbus.Conn, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	if conn != nil {
		uris := make([]string, len(paths))
		for i, p := range paths {
			uris[i] = (&url.URL{Scheme: "file", Path: p}).String()
		}
		ctx, cancel := context.WithTimeout(ctx, fileManagerTimeout)
		defer cancel()
		call := conn.Object(fileManager, fileManagerOb).CallWithContext(ctx, fileManager+".ShowItems", 0, uris, "")
		if call.Err == nil {
			return nil
		}
	}
	return openPath(filepath.Dir(paths[0]))
}
