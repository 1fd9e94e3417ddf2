// Package tray is punchdrop's desktop front: a system-tray icon with a menu,
// desktop notifications and the clipboard, all over D-Bus. It is a thin
// client of the agent's control API and its event stream; it never opens
// the agent's state.
//
// The tray needs a freedesktop desktop: a session bus with a
// StatusNotifierWatcher (the tray host of KDE, LXQt, Xfce, Cinnamon, GNOME
// with the AppIndicator extension...). CheckDesktop says whether there is
// one; Run shows the icon until the user quits or the context ends. On
// other systems both report that the tray is not available, and the caller
// runs the agent in the foreground instead.
package tray
