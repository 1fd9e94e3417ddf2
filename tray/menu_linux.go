//go:build linux

package tray

import (
	"fmt"

	"fyne.io/systray"

	"github.com/punchdrop/punchdrop/control"
)

// maxTransferLines is how many transfers the menu lists; the tooltip and
// "punchdrop status" tell the rest.
const maxTransferLines = 3

// Menu labels that tests and the screenshot script look for.
const (
	labelCopy      = "Copy my connection string"
	labelConnect   = "Connect peer"
	labelPeers     = "Peers"
	labelRequests  = "Requests"
	labelOutbox    = "Open outbox"
	labelDownloads = "Open downloads"
	labelPause     = "Pause transfers"
	labelAutostart = "Start at login"
	labelQuit      = "Quit"
	labelSendFile  = "Send file…"
	labelSendDir   = "Send folder…"
	labelRename    = "Rename…"
	labelRemove    = "Remove"
	labelAccept    = "Accept"
	labelDecline   = "Decline"
)

// item is a menu entry plus the state last sent to the tray host, so a
// render sends only what changed: every change is a D-Bus signal, and
// some hosts rebuild the whole menu on each.
type item struct {
	mi       *systray.MenuItem
	title    string
	hidden   bool
	disabled bool
	checked  bool
}

func newItem(mi *systray.MenuItem, title string) *item { return &item{mi: mi, title: title} }

func (i *item) setTitle(s string) {
	if s != i.title {
		i.mi.SetTitle(s)
		i.title = s
	}
}

func (i *item) setVisible(v bool) {
	switch {
	case v && i.hidden:
		i.mi.Show()
	case !v && !i.hidden:
		i.mi.Hide()
	default:
		return
	}
	i.hidden = !v
}

func (i *item) setEnabled(v bool) {
	switch {
	case v && i.disabled:
		i.mi.Enable()
	case !v && !i.disabled:
		i.mi.Disable()
	default:
		return
	}
	i.disabled = !v
}

func (i *item) setChecked(v bool) {
	switch {
	case v && !i.checked:
		i.mi.Check()
	case !v && i.checked:
		i.mi.Uncheck()
	default:
		return
	}
	i.checked = v
}

// menu holds the tray menu's items. Menus cannot drop items reliably on
// every host, so peers and requests use pools of items that grow when
// needed and are hidden when not.
type menu struct {
	status, peerCount *item
	transfers         []*item // maxTransferLines lines, then "and N more"
	copyID, connect   *item
	peers, noPeers    *item
	peerSlots         []*peerSlot
	requests          *item
	requestSlots      []*requestSlot
	outbox, downloads *item
	pause, autostart  *item
	quit              *item
}

// peerSlot is one peer's entry in the Peers submenu.
type peerSlot struct {
	item, send, sendDir, rename, remove *item
	peer                                control.PeerInfo // shown now
}

// requestSlot is one pending request in the Requests submenu.
type requestSlot struct {
	item, accept, decline *item
	peer                  control.PeerInfo // shown now
}

// add adds a top-level item.
func add(title, tooltip string) *item { return newItem(systray.AddMenuItem(title, tooltip), title) }

// addSub adds an item to parent's submenu.
func addSub(parent *item, title, tooltip string) *item {
	return newItem(parent.mi.AddSubMenuItem(title, tooltip), title)
}

// buildMenu creates the menu; render fills it in.
func (a *app) buildMenu() {
	m := &a.menu
	m.status = add("Starting…", "Your NAT and public address")
	m.status.setEnabled(false)
	m.peerCount = add("", "Peers connected right now")
	m.peerCount.setEnabled(false)
	for range maxTransferLines + 1 {
		t := add("", "")
		t.setEnabled(false)
		t.setVisible(false)
		m.transfers = append(m.transfers, t)
	}
	systray.AddSeparator()
	m.copyID = add(labelCopy, "Copy the line your peer pastes into Connect peer")
	a.onClick(m.copyID, a.copyConnString)
	m.connect = add(labelConnect, "Add the peer whose connection string is on the clipboard")
	a.onClick(m.connect, a.connectPeer)
	m.peers = add(labelPeers, "Your peers; send them files")
	m.noPeers = addSub(m.peers, "No peers yet", "")
	m.noPeers.setEnabled(false)
	m.requests = add(labelRequests, "Nodes that asked to become your peer")
	m.requests.setVisible(false)
	systray.AddSeparator()
	m.outbox = add(labelOutbox, "Files dropped here go to your peers")
	a.onClick(m.outbox, func() { a.openFolder(a.folder(func(c control.ConfigInfo) string { return c.Outbox }, a.opts.Outbox)) })
	m.downloads = add(labelDownloads, "Received files land here")
	a.onClick(m.downloads, func() {
		a.openFolder(a.folder(func(c control.ConfigInfo) string { return c.Downloads }, a.opts.Downloads))
	})
	systray.AddSeparator()
	m.pause = newItem(systray.AddMenuItemCheckbox(labelPause, "Stop sending and receiving until unchecked", false), labelPause)
	a.onClick(m.pause, a.togglePause)
	m.autostart = newItem(systray.AddMenuItemCheckbox(labelAutostart, "Start punchdrop when you log in", false), labelAutostart)
	a.onClick(m.autostart, a.toggleAutostart)
	systray.AddSeparator()
	quitTip := "Close the tray icon; the agent keeps running"
	if a.opts.OwnsAgent {
		quitTip = "Quit punchdrop: nothing is sent or received until it runs again"
	}
	m.quit = add(labelQuit, quitTip)
	a.onClick(m.quit, a.quit)
}

// onClick runs fn on the UI loop each time it is clicked.
func (a *app) onClick(it *item, fn func()) {
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		for {
			select {
			case <-a.ctx.Done():
				return
			case _, ok := <-it.mi.ClickedCh:
				if !ok {
					return
				}
				a.post(fn)
			}
		}
	}()
}

// newPeerSlot adds a peer entry with its actions to the Peers submenu.
func (a *app) newPeerSlot() *peerSlot {
	m := &a.menu
	s := &peerSlot{item: addSub(m.peers, "", "")}
	s.send = addSub(s.item, labelSendFile, "Choose files to send to this peer")
	s.sendDir = addSub(s.item, labelSendDir, "Choose a folder to send to this peer")
	s.rename = addSub(s.item, labelRename, "Give this peer another name")
	s.remove = addSub(s.item, labelRemove, "Forget this peer; files queued for it fail")
	a.onClick(s.send, func() { a.sendTo(s.peer, false) })
	a.onClick(s.sendDir, func() { a.sendTo(s.peer, true) })
	a.onClick(s.rename, func() { a.rename(s.peer) })
	a.onClick(s.remove, func() { a.remove(s.peer) })
	m.peerSlots = append(m.peerSlots, s)
	return s
}

// newRequestSlot adds a request entry with Accept and Decline.
func (a *app) newRequestSlot() *requestSlot {
	m := &a.menu
	s := &requestSlot{item: addSub(m.requests, "", "")}
	s.accept = addSub(s.item, labelAccept, "Make this node a peer")
	s.decline = addSub(s.item, labelDecline, "Ignore this request")
	a.onClick(s.accept, func() { a.accept(s.peer.NodeID) })
	a.onClick(s.decline, func() { a.decline(s.peer.NodeID) })
	m.requestSlots = append(m.requestSlots, s)
	return s
}

// render brings the menu, icon and tooltip in line with the state.
func (a *app) render() {
	m := &a.menu
	if m.quit == nil {
		return // not built yet
	}
	if a.agentUp {
		m.status.setTitle(natLine(a.id))
		m.peerCount.setTitle(peersLine(a.peers))
	} else {
		m.status.setTitle("The punchdrop agent is not running")
		m.peerCount.setTitle("Start it with: punchdrop agent")
	}

	transfers := a.sortedTransfers()
	for i, line := range m.transfers {
		switch {
		case i < maxTransferLines && i < len(transfers):
			line.setTitle(menuTransferLine(transfers[i]))
			line.setVisible(true)
		case i == maxTransferLines && len(transfers) > maxTransferLines:
			line.setTitle(fmt.Sprintf("…and %d more", len(transfers)-maxTransferLines))
			line.setVisible(true)
		default:
			line.setVisible(false)
		}
	}

	var peers, pending []control.PeerInfo
	if a.agentUp {
		for _, p := range a.peers {
			if isPeer(p) {
				peers = append(peers, p)
			} else {
				pending = append(pending, p)
			}
		}
	}
	for len(m.peerSlots) < len(peers) {
		a.newPeerSlot()
	}
	for i, s := range m.peerSlots {
		if i < len(peers) {
			s.peer = peers[i]
			s.item.setTitle(peerTitle(peers[i]))
			s.item.setVisible(true)
		} else {
			s.item.setVisible(false)
		}
	}
	m.noPeers.setVisible(len(peers) == 0)
	for len(m.requestSlots) < len(pending) {
		a.newRequestSlot()
	}
	for i, s := range m.requestSlots {
		if i < len(pending) {
			s.peer = pending[i]
			s.item.setTitle(requestTitle(pending[i]))
			s.item.setVisible(true)
		} else {
			s.item.setVisible(false)
		}
	}
	m.requests.setTitle(requestsTitle(len(pending)))
	m.requests.setVisible(len(pending) > 0)

	for _, it := range []*item{m.copyID, m.connect, m.peers, m.pause} {
		it.setEnabled(a.agentUp)
	}
	m.pause.setChecked(a.paused)
	m.autostart.setChecked(a.autoOn)

	if s := a.iconState(); s != a.icon {
		systray.SetIcon(a.icons[s])
		a.icon = s
	}
	if t := tooltipText(a.agentUp, a.paused, a.peers, transfers); t != a.tooltip {
		systray.SetTooltip(t)
		a.tooltip = t
	}
}
