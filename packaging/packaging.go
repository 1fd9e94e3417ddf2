// Package packaging holds what installs punchdrop on a Linux desktop: the
// systemd user unit, the .desktop entries and the nfpm config that packs
// them with the binary, man pages, completions, icons (packaging/icons),
// the LICENSE and the third-party notices (packaging/notices) into a .deb
// and an .rpm ("make package"). Its tests check those files.
//
// The tray's "Start at login" writes its own autostart entry (with the
// right Exec line for a --home); the packages install
// punchdrop-autostart.desktop under /usr/share/punchdrop for reference.
package packaging
