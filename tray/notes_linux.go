//go:build linux

package tray

import (
	"context"
	"fmt"
	"time"

	"github.com/punchdrop/punchdrop/control"
)

// addToBatch puts an ended transfer into its batch, starting a new one
// when the last is older than coalesceWindow, and shows the batch.
func (a *app) addToBatch(t control.TransferInfo, now time.Time) {
	kind := batchKind(t)
	k := kind + "/" + t.Peer
	b := a.batches[k]
	if b == nil || now.Sub(b.last) > coalesceWindow {
		a.batchSeq++
		b = &batch{key: fmt.Sprintf("%s/%d", k, a.batchSeq), kind: kind, peer: transferPeer(t)}
		a.batches[k] = b
	}
	b.add(t, now)
	for key, old := range a.batches {
		if now.Sub(old.last) > coalesceWindow {
			delete(a.batches, key)
		}
	}
	summary, body := b.text()
	nt := note{key: b.key, summary: summary, body: body}
	if kind == batchReceived {
		if target, ok := b.openTarget(); ok {
			show := b.showTargets()
			nt.actions = []noteAction{
				{key: "open", label: "Open", run: func() { a.openOrSay(target) }},
				{key: "show", label: "Show in folder", run: func() { a.showOrSay(show) }},
			}
		}
	}
	a.notes.send(nt)
}

// openOrSay opens a path, and says so in a notification when it cannot.
func (a *app) openOrSay(path string) {
	if err := openPath(path); err != nil {
		a.log.Warn("open", "path", path, "err", err)
		a.notes.send(note{summary: "Could not open " + path, body: errorText(err)})
	}
}

// showOrSay shows paths in the file manager, or says why it cannot.
func (a *app) showOrSay(paths []string) {
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		if err := showInFolder(a.ctx, a.notes.conn, paths); err != nil {
			a.log.Warn("show in folder", "err", err)
			a.notes.send(note{summary: "Could not show the folder", body: errorText(err)})
		}
	}()
}

// notifyRequest tells the user that an unknown node wants to connect,
// once per node, with Accept and Decline buttons.
func (a *app) notifyRequest(p control.PeerInfo) {
	if a.knocked[p.NodeID] {
		return
	}
	a.knocked[p.NodeID] = true
	who := p.Name
	if who == "" {
		who = "Node " + shortID(p.NodeID)
	}
	body := fmt.Sprintf("Node %s at %s. Accept only if you expect them; you can also answer in the tray's Requests menu.", shortID(p.NodeID), p.Addr)
	id := p.NodeID
	a.notes.send(note{
		summary: clip(who+" wants to be your peer", maxLabel),
		body:    body,
		actions: []noteAction{
			{key: "accept", label: "Accept", run: func() { a.post(func() { a.accept(id) }) }},
			{key: "decline", label: "Decline", run: func() { a.post(func() { a.decline(id) }) }},
		},
	})
}

// notifyMessage shows a received message, with Reply when a dialog can
// ask for the answer.
func (a *app) notifyMessage(m control.Message) {
	from := m.FromName
	if from == "" {
		from = shortID(m.From)
	}
	nt := note{summary: clip("Message from "+from, maxLabel), body: clip(m.Text, maxNoteBodyText)}
	if a.dlg.available() {
		peer := m.From
		nt.actions = []noteAction{{key: "reply", label: "Reply", run: func() { a.post(func() { a.reply(peer, from) }) }}}
	}
	a.notes.send(nt)
}

// reply asks for a message to peer and sends it.
func (a *app) reply(peer, name string) {
	a.run("send the message to "+name, func(ctx context.Context) error {
		text, ok, err := a.dlg.entry(ctx, "Reply to "+name, "Message to "+name+":", "")
		if err != nil || !ok || text == "" {
			return err
		}
		if err := a.client.SendMessage(ctx, control.MsgRequest{Peer: peer, Text: text}); err != nil {
			return fmt.Errorf("send message: %w", err)
		}
		return nil
	})
}
