// Package packaging holds what installs punchdrop on a Linux desktop: the
// systemd user unit, the .desktop entries and the nfpm config that packs
// them with the binary, man pages, completions and icons (packaging/icons)
// into a .deb and an .rpm ("make package").
//
// The Go side is small: the tray embeds the autostart entry from here, so
// "Start at login" works whether punchdrop came from a package or not.
package packaging

import _ "embed"

// AutostartDesktop is the XDG autostart entry that starts punchdrop's tray
// at login. The tray's "Start at login" writes it to AutostartFile under
// the user's config directory ($XDG_CONFIG_HOME, else ~/.config), and
// removes it to turn that off. Packages also install a copy as
// InstalledAutostartFile.
//
//go:embed punchdrop-autostart.desktop
var AutostartDesktop []byte

const (
	// AutostartFile is where the autostart entry goes, relative to the
	// user's config directory.
	AutostartFile = "autostart/punchdrop.desktop"
	// InstalledAutostartFile is where the packages install the entry; it
	// is not in /etc/xdg/autostart because starting at login is each
	// user's choice.
	InstalledAutostartFile = "/usr/share/punchdrop/punchdrop-autostart.desktop"
)
