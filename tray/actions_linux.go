//go:build linux

package tray

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/punchdrop/punchdrop/control"
)

// The menu's actions. Each starts on the UI loop; whatever may block runs
// through a.run on its own goroutine and posts its result back.

// copyConnString puts this node's connection string on the clipboard.
func (a *app) copyConnString() {
	a.run("copy your connection string", func(ctx context.Context) error {
		id, err := a.client.ID(ctx)
		if err != nil {
			return fmt.Errorf("copy connection string: %w", err)
		}
		if err := writeClipboard(id.ConnectionString); err != nil {
			return err
		}
		a.notes.send(note{
			key:     "copied",
			summary: "Connection string copied",
			body:    "Send it to your peer; they choose Connect peer with it on their clipboard, and you do the same with theirs.",
		})
		return nil
	})
}

// connectPeer adds the peer whose connection string is on the clipboard,
// or asks for one in a dialog, or says what to do when neither works.
func (a *app) connectPeer() {
	a.run("connect the peer", func(ctx context.Context) error {
		text, clipErr := readClipboard()
		s, ok := findConnString(text)
		if !ok && a.dlg.available() {
			var err error
			text, ok, err = a.dlg.entry(ctx, "Connect peer", "Paste your peer's connection string (it starts with punchdrop:):", "")
			if err != nil || !ok {
				return err
			}
			if s, ok = findConnString(text); !ok {
				return fmt.Errorf("connect peer: %q is not a connection string (it starts with %q)", clip(text, 40), "punchdrop:")
			}
		}
		if !ok {
			body := "Copy your peer's connection string (it starts with punchdrop:), then choose Connect peer again."
			if errors.Is(clipErr, errNoClipboardTool) {
				body = capitalize(clipErr.Error()) + ". Or run: punchdrop connect 'punchdrop:…'"
			}
			a.notes.send(note{summary: "No connection string on the clipboard", body: body})
			return nil
		}
		p, err := a.client.Connect(ctx, s)
		if err != nil {
			return fmt.Errorf("connect peer: %w", err)
		}
		body := "Connecting… It connects once " + peerName(p) + " has added your connection string too."
		if p.NameTaken != "" {
			body = "Another peer is called " + p.NameTaken + " already, so this one is " + p.Name + ". " + body
		}
		a.notes.send(note{summary: clip("Added "+peerName(p), maxLabel), body: body})
		a.post(a.refreshPeers)
		return nil
	})
}

// sendTo asks for files (or a folder) and queues them for peer.
func (a *app) sendTo(peer control.PeerInfo, folder bool) {
	name := peerName(peer)
	a.run("send to "+name, func(ctx context.Context) error {
		if !a.dlg.available() {
			a.notes.send(note{
				summary: "Choosing files needs zenity or kdialog",
				body:    fmt.Sprintf("Drop files into the outbox folder (Open outbox), or run: punchdrop send %s FILE…", name),
			})
			return nil
		}
		what := "Files to send to " + name
		if folder {
			what = "Folder to send to " + name
		}
		paths, ok, err := a.dlg.choose(ctx, what, folder)
		if err != nil || !ok {
			return err
		}
		if _, err := a.client.Send(ctx, control.SendRequest{Peer: peer.NodeID, Paths: paths}); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		a.post(a.refresh)
		return nil
	})
}

// rename asks for a peer's new name.
func (a *app) rename(peer control.PeerInfo) {
	name := peerName(peer)
	a.run("rename "+name, func(ctx context.Context) error {
		if !a.dlg.available() {
			a.notes.send(note{summary: "Renaming needs zenity or kdialog", body: fmt.Sprintf("Or run: punchdrop peers rename %s NEWNAME", name)})
			return nil
		}
		newName, ok, err := a.dlg.entry(ctx, "Rename "+name, "New name for "+name+":", peer.Name)
		if err != nil || !ok || newName == "" || newName == peer.Name {
			return err
		}
		if _, err := a.client.RenamePeer(ctx, peer.NodeID, newName); err != nil {
			return fmt.Errorf("rename peer: %w", err)
		}
		a.post(a.refreshPeers)
		return nil
	})
}

// remove forgets a peer, after asking when a dialog can.
func (a *app) remove(peer control.PeerInfo) {
	name := peerName(peer)
	a.run("remove "+name, func(ctx context.Context) error {
		if a.dlg.available() {
			ok, err := a.dlg.confirm(ctx, "Remove "+name, fmt.Sprintf("Remove %s? Files still queued for %s will fail, and %s must be added again to send files.", name, name, name))
			if err != nil || !ok {
				return err
			}
		}
		if err := a.client.RemovePeer(ctx, peer.NodeID); err != nil {
			return fmt.Errorf("remove peer: %w", err)
		}
		a.post(a.refreshPeers)
		return nil
	})
}

// accept makes a pending request a peer.
func (a *app) accept(nodeID string) {
	a.run("accept the request", func(ctx context.Context) error {
		p, err := a.client.Accept(ctx, nodeID)
		if err != nil {
			return fmt.Errorf("accept: %w", err)
		}
		a.log.Info("accepted peer request", "peer", p.NodeID, "name", p.Name)
		a.post(a.refreshPeers)
		return nil
	})
}

// decline drops a pending request.
func (a *app) decline(nodeID string) {
	a.run("decline the request", func(ctx context.Context) error {
		if err := a.client.Decline(ctx, nodeID); err != nil {
			return fmt.Errorf("decline: %w", err)
		}
		a.post(a.refreshPeers)
		return nil
	})
}

// openFolder opens one of the agent's folders, creating it if needed.
// folder asks the agent where one of its folders is now ("config set"
// may have moved it), falling back to where it was when the tray started.
func (a *app) folder(pick func(control.ConfigInfo) string, fallback string) string {
	ctx, cancel := context.WithTimeout(a.ctx, 2*time.Second)
	defer cancel()
	if cfg, err := a.client.Config(ctx); err == nil {
		return pick(cfg)
	}
	return fallback
}

func (a *app) openFolder(dir string) {
	if dir == "" {
		a.notes.send(note{summary: "That folder is not known", body: "Run punchdrop config to see where it is."})
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		a.notes.send(note{summary: "Could not open " + dir, body: errorText(err)})
		return
	}
	a.openOrSay(dir)
}

// togglePause pauses or resumes transfers.
func (a *app) togglePause() {
	paused := !a.paused
	what := "pause transfers"
	if !paused {
		what = "resume transfers"
	}
	a.run(what, func(ctx context.Context) error {
		if err := a.client.Pause(ctx, paused); err != nil {
			return err
		}
		a.post(func() { a.paused = paused })
		return nil
	})
}

// toggleAutostart adds or removes the autostart entry.
func (a *app) toggleAutostart() {
	on := !a.autoOn
	if err := a.auto.set(on, a.opts.Command); err != nil {
		a.log.Warn("start at login", "err", err)
		a.notes.send(note{summary: "Could not change Start at login", body: errorText(err)})
		return
	}
	a.autoOn = a.auto.enabled()
	a.log.Info("start at login", "on", a.autoOn, "entry", a.auto.userFile())
}
