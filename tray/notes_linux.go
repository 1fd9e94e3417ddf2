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
// once per node, with Accept and Decline buttons. Requests that come
// close together share one notification, which points to the Requests
// menu instead: a burst of them is one notification, not a hundred.
func (a *app) notifyRequest(p control.PeerInfo, now time.Time) {
	if _, seen := a.knocked[p.NodeID]; seen {
		return
	}
	a.knocked[p.NodeID] = now
	who := p.Name
	if who == "" {
		who = "Node " + shortID(p.NodeID)
	}
	if b := a.knocks; b != nil && now.Sub(b.last) <= coalesceWindow {
		b.who, b.last = append(b.who, who), now
		a.notes.send(note{
			key:     b.key,
			summary: fmt.Sprintf("%d nodes want to be your peer", len(b.who)),
			body:    listNames(b.who, maxNamesInBody) + ". Accept only those you expect, in the tray's Requests menu.",
		})
		return
	}
	a.batchSeq++
	a.knocks = &knockBatch{key: fmt.Sprintf("requests/%d", a.batchSeq), who: []string{who}, last: now}
	body := fmt.Sprintf("Node %s at %s. Accept only if you expect them; you can also answer in the tray's Requests menu.", shortID(p.NodeID), p.Addr)
	id := p.NodeID
	a.notes.send(note{
		key:     a.knocks.key,
		summary: clip(who+" wants to be your peer", maxLabel),
		body:    body,
		actions: []noteAction{
			{key: "accept", label: "Accept", run: func() { a.post(func() { a.accept(id) }) }},
			{key: "decline", label: "Decline", run: func() { a.post(func() { a.decline(id) }) }},
		},
	})
}

// forgetKnocks keeps the memory of notified requests to the ones still
// pending and the recent ones, so it cannot grow without bound.
func (a *app) forgetKnocks(now time.Time) {
	pending := map[string]bool{}
	for _, p := range a.peers {
		if !isPeer(p) {
			pending[p.NodeID] = true
		}
	}
	for id, at := range a.knocked {
		if !pending[id] && now.Sub(at) > endedMemory || len(a.knocked) > maxKnocked {
			delete(a.knocked, id)
		}
	}
}

// notifyAlert shows each alert of the agent once.
func (a *app) notifyAlert(alert string) {
	if a.alerted[alert] {
		return
	}
	a.alerted[alert] = true
	a.notes.send(note{summary: "punchdrop needs your attention", body: clip(alert, maxNoteBodyText)})
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
