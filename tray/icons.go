package tray

import "github.com/punchdrop/punchdrop/packaging/icons"

// iconState is what the tray icon shows.
type iconState int

const (
	iconIdle    iconState = iota // the agent runs, nothing moves
	iconBusy                     // files are moving
	iconPaused                   // transfers are paused
	iconOffline                  // the agent does not answer, or something failed
)

func (s iconState) String() string {
	switch s {
	case iconIdle:
		return icons.Idle
	case iconBusy:
		return icons.Transferring
	case iconPaused:
		return icons.Paused
	case iconOffline:
		return icons.Offline
	}
	return "unknown"
}

// iconSize is the edge of the tray icon in pixels; panels scale it to
// their own size (16–48 px), and 64 keeps it sharp on HiDPI panels.
const iconSize = 64

// iconPNG returns the tray icon for s as PNG bytes: the packaged icon of
// that state (packaging/icons).
func iconPNG(s iconState) []byte { return icons.PNG(s.String(), iconSize) }
