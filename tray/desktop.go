package tray

import (
	"errors"
	"log/slog"
	"time"
)

// ErrNoDesktop is returned by CheckDesktop when there is no desktop session
// to show a tray icon in; the error says what is missing.
var ErrNoDesktop = errors.New("no desktop session")

// ErrUnsupported is returned by CheckDesktop and Run on systems the tray
// does not support yet (all but Linux).
var ErrUnsupported = errors.New("the punchdrop tray runs on Linux desktops only for now")

// HostWait is how long CheckDesktop waits for a tray host to appear: at
// login the panel may start a few seconds after punchdrop.
const HostWait = 5 * time.Second

// Options configure Run.
type Options struct {
	// Socket is the agent's control socket.
	Socket string
	// Outbox and Downloads are the agent's folders, for Open outbox and
	// Open downloads.
	Outbox, Downloads string
	// OwnsAgent says that the agent runs in this process and stops when
	// the tray quits; Quit's tooltip says so.
	OwnsAgent bool
	// Command is the command line that starts this tray, written into the
	// autostart entry by "Start at login". Empty means "punchdrop".
	Command []string
	// Logger, if nil, is slog.Default().
	Logger *slog.Logger
}
