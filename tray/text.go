package tray

import (
	"fmt"
	"path"
	"strings"

	"github.com/punchdrop/punchdrop/bytesize"
	"github.com/punchdrop/punchdrop/control"
)

// appName names the tray in notifications and tooltips.
const appName = "punchdrop"

// maxLabel bounds a menu label: peer names and errors come from the network
// and from disk, and a huge label makes the menu unusable.
const maxLabel = 80

// clip shortens s to at most n runes, marking the cut with "…".
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// peerName is how the tray names a peer: its name, else its short node ID.
func peerName(p control.PeerInfo) string {
	if p.Name != "" {
		return p.Name
	}
	return shortID(p.NodeID)
}

// transferPeer is how the tray names the other side of a transfer.
func transferPeer(t control.TransferInfo) string {
	if t.PeerName != "" {
		return t.PeerName
	}
	return shortID(t.Peer)
}

// shortID is a node ID as shown where space is tight.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// natLine is the first status line: the NAT in plain words and the public
// address.
func natLine(id control.IDInfo) string {
	nat := id.NAT.Summary
	if nat == "" {
		nat = "NAT not probed yet"
	}
	addr := id.PublicAddr
	if addr == "" {
		addr = "no public address yet"
	} else {
		addr = "public " + addr
	}
	return clip(nat+" · "+addr, maxLabel)
}

// isPeer reports whether p is a configured peer rather than a pending
// request.
func isPeer(p control.PeerInfo) bool { return p.State != control.StatePending }

// peersLine is the second status line: how many peers are connected.
func peersLine(peers []control.PeerInfo) string {
	n, m := 0, 0
	for _, p := range peers {
		if !isPeer(p) {
			continue
		}
		m++
		if p.State == control.StateConnected {
			n++
		}
	}
	if m == 0 {
		return "No peers yet: use Connect peer"
	}
	return fmt.Sprintf("%d of %d peers connected", n, m)
}

// pathRelay is the path of a session through a TURN relay.
const pathRelay = "relay"

// peerTitle labels a peer in the Peers submenu. A session through a
// relay says so in words: it is slower and crosses someone's server.
func peerTitle(p control.PeerInfo) string {
	state := p.State
	switch p.State {
	case control.StateConnected:
		switch p.Path {
		case "":
		case pathRelay:
			state += " via relay"
		default:
			state += ", " + p.Path
		}
	case control.StateConnecting:
		state += "…"
	case control.StateOffline:
		if p.Error != "" {
			state += ": " + p.Error
		}
	}
	return clip(peerName(p)+" — "+state, maxLabel)
}

// requestTitle labels a pending request in the Requests submenu.
func requestTitle(p control.PeerInfo) string {
	who := p.Name
	if who == "" {
		who = "node " + shortID(p.NodeID)
	}
	if p.Addr != "" {
		who += " (" + p.Addr + ")"
	}
	return clip(who, maxLabel)
}

// requestsTitle labels the Requests submenu.
func requestsTitle(n int) string {
	if n == 1 {
		return "Requests (1)"
	}
	return fmt.Sprintf("Requests (%d)", n)
}

// active reports whether a transfer is still queued or moving.
func active(t control.TransferInfo) bool {
	switch t.State {
	case control.TransferQueued, control.TransferSending, control.TransferReceiving:
		return true
	}
	return false
}

// moving reports whether a transfer is sending or receiving right now.
func moving(t control.TransferInfo) bool {
	return t.State == control.TransferSending || t.State == control.TransferReceiving
}

// percent is how much of t the receiver holds, 0–100.
func percent(t control.TransferInfo) int {
	if t.Size <= 0 {
		return 0
	}
	return int(t.Done * 100 / t.Size)
}

// transferLine describes one transfer for the menu and the tooltip:
// "sending report.pdf to bob, 42%".
func transferLine(t control.TransferInfo) string {
	name := clip(t.Name, 40)
	who := clip(transferPeer(t), 24)
	var s string
	switch {
	case t.State == control.TransferQueued && t.Direction == control.DirectionOut:
		s = fmt.Sprintf("waiting to send %s to %s", name, who)
	case t.State == control.TransferQueued:
		s = fmt.Sprintf("waiting to receive %s from %s", name, who)
	case t.Direction == control.DirectionOut:
		s = fmt.Sprintf("sending %s to %s, %d%%", name, who, percent(t)) + rateAndETA(t.RateBps, t.ETASec)
	default:
		s = fmt.Sprintf("receiving %s from %s, %d%%", name, who, percent(t)) + rateAndETA(t.RateBps, t.ETASec)
	}
	return s
}

// rateAndETA says how fast a transfer moves and when it ends, as the
// agent measured (a rate over the last seconds that holds steady under
// loss): ", 1.2 MB/s, about 3 min left"; nothing while the agent does
// not know yet. The time left is rounded so that it reads calmly: to
// 5 s under a minute, to minutes under an hour.
func rateAndETA(rateBps, etaSec float64) string {
	if rateBps <= 0 {
		return ""
	}
	s := fmt.Sprintf(", %s/s", bytesize.Format(int64(rateBps)))
	if etaSec <= 0 {
		return s
	}
	switch eta := int64(etaSec + 0.5); {
	case eta < 60:
		s += fmt.Sprintf(", about %d s left", max(5, (eta+2)/5*5))
	case eta < 3600:
		s += fmt.Sprintf(", about %d min left", (eta+30)/60)
	default:
		s += fmt.Sprintf(", about %d h %d min left", eta/3600, eta%3600/60)
	}
	return s
}

// menuTransferLine describes a transfer in the menu: like transferLine but
// with its size for the percentage, so the label changes only when the
// transfer does. Hosts built on libdbusmenu-qt (LXQt, KDE) rebuild an open
// menu on every change, and a label that counted up several times a second
// kept the menu from opening at all.
func menuTransferLine(t control.TransferInfo) string {
	name := clip(t.Name, 40)
	who := clip(transferPeer(t), 24)
	size := bytesize.Format(t.Size)
	switch {
	case t.State == control.TransferQueued && t.Direction == control.DirectionOut:
		return fmt.Sprintf("Waiting to send %s to %s", name, who)
	case t.State == control.TransferQueued:
		return fmt.Sprintf("Waiting to receive %s from %s", name, who)
	case t.Direction == control.DirectionOut:
		return fmt.Sprintf("Sending %s to %s (%s)", name, who, size)
	}
	return fmt.Sprintf("Receiving %s from %s (%s)", name, who, size)
}

// capitalize upper-cases the first letter of an ASCII sentence.
func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// tooltipText says what is going on, for the icon's tooltip.
func tooltipText(agentUp, paused bool, peers []control.PeerInfo, transfers []control.TransferInfo) string {
	if !agentUp {
		return appName + " — the agent is not running"
	}
	var mov []control.TransferInfo
	queued := 0
	for _, t := range transfers {
		if moving(t) {
			mov = append(mov, t)
		} else if active(t) {
			queued++
		}
	}
	prefix := appName + " — "
	if paused {
		prefix += "paused — "
	}
	switch {
	case len(mov) == 1:
		s := prefix + transferLine(mov[0])
		if queued > 0 {
			s += fmt.Sprintf(" (%d more waiting)", queued)
		}
		return s
	case len(mov) > 1:
		var size, done int64
		var rate, eta float64 // together, and until the last ends
		for _, t := range mov {
			size += t.Size
			done += t.Done
			rate += t.RateBps
			eta = max(eta, t.ETASec)
		}
		pct := 0
		if size > 0 {
			pct = int(done * 100 / size)
		}
		s := prefix + fmt.Sprintf("%d files moving, %d%%", len(mov), pct) + rateAndETA(rate, eta)
		if queued > 0 {
			s += fmt.Sprintf(" (%d more waiting)", queued)
		}
		return s
	case queued > 0:
		return prefix + fmt.Sprintf("%d %s waiting for peers", queued, plural(queued, "file", "files"))
	}
	return prefix + strings.ToLower(peersLine(peers)[:1]) + peersLine(peers)[1:]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// findConnString returns the first connection string in text: people
// paste whole chat lines ("here's mine: punchdrop:..."), so any
// whitespace-separated word that starts with the scheme counts. The agent
// checks the string strictly.
func findConnString(text string) (string, bool) {
	for _, w := range strings.Fields(text) {
		w = strings.Trim(w, `"'<>()[],;`)
		if strings.HasPrefix(strings.ToLower(w), control.ConnStringScheme) && len(w) > len(control.ConnStringScheme) {
			return w, true
		}
	}
	return "", false
}

// topLevel splits a received file's relative name into its first
// component and reports whether there was more (the file came inside a
// folder).
func topLevel(name string) (string, bool) {
	name = path.Clean(name)
	first, _, more := strings.Cut(name, "/")
	return first, more
}
