package agent

import (
	"path/filepath"
	"slices"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/store"
	"github.com/punchdrop/punchdrop/transfer"
)

// finishedShown is how long done and failed transfers stay in status.
const finishedShown = 24 * time.Hour

// transferView is the control API's view of transfers: it maps the
// queue's and the journal's records, with their live progress, to the
// control types, and publishes what changes as events. It is the one
// place where store and transfer states become control states.
type transferView struct {
	store  *store.Store
	live   *progressTracker
	events *broker
	// downloads is the downloads folder, where received files are.
	downloads func() string
}

// outgoingState is how an outgoing transfer's state shows; attempting
// says whether an attempt at it runs.
func outgoingState(s store.OutgoingState, attempting bool) string {
	switch {
	case s == store.OutgoingDone:
		return control.TransferDone
	case s == store.OutgoingFailed:
		return control.TransferFailed
	case attempting:
		return control.TransferSending
	}
	return control.TransferQueued
}

// incomingState is how an incoming transfer's state shows; moving says
// whether it is being received now.
func incomingState(s transfer.RecordState, moving bool) string {
	switch {
	case s == transfer.Received:
		return control.TransferDone
	case moving:
		return control.TransferReceiving
	}
	return control.TransferQueued // interrupted: it waits for its sender to offer it again
}

// peerNames maps node IDs to the names of the peers.
func (v *transferView) peerNames() map[string]string {
	peers, _ := v.store.Peers()
	names := make(map[string]string, len(peers))
	for _, p := range peers {
		names[p.ID.String()] = p.Name
	}
	return names
}

func (v *transferView) outgoing(o store.Outgoing, names map[string]string, attempting bool) control.TransferInfo {
	info := control.TransferInfo{
		ID: o.ID, Peer: o.Peer, PeerName: names[o.Peer], Direction: control.DirectionOut,
		Name: o.Name, Path: o.Path, Size: o.Size, State: outgoingState(o.State, attempting), Error: o.Error,
	}
	if o.State == store.OutgoingDone {
		info.Done = o.Size
	}
	return info
}

func (v *transferView) incoming(rec transfer.Record, names map[string]string, moving bool) control.TransferInfo {
	info := control.TransferInfo{
		ID: rec.ID, Peer: rec.Peer, PeerName: names[rec.Peer], Direction: control.DirectionIn,
		Name: rec.Name, Size: rec.Size, State: incomingState(rec.State, moving),
	}
	if rec.State == transfer.Received {
		info.Name, info.Done = rec.Final, rec.Size
		info.Path = filepath.Join(v.downloads(), filepath.FromSlash(rec.Final))
	}
	return info
}

// withLive adds a moving transfer's progress to its row.
func withLive(info control.TransferInfo, l liveTransfer) control.TransferInfo {
	info.Done, info.RateBps, info.ETASec = l.done, l.rateBps, l.etaSec
	return info
}

// status lists transfers (everything queued or moving, and what ended in
// the last day) and the queue: each file still to send, per peer.
// Whether sending is paused, and the alerts, are the caller's to add.
func (v *transferView) status() (control.Status, error) {
	now := time.Now()
	act, err := v.store.Activity(now.Add(-finishedShown))
	if err != nil {
		return control.Status{}, err
	}
	names := v.peerNames()
	st := control.Status{Transfers: []control.TransferInfo{}, Queue: []control.QueueItem{}}
	for _, o := range act.Queued {
		l, moving := v.live.get(liveKey{outgoing, o.Peer, o.ID}, now)
		info := v.outgoing(o, names, moving)
		st.Queue = append(st.Queue, control.QueueItem{
			ID: o.ID, File: o.Path, Name: o.Name, Peer: o.Peer, PeerName: info.PeerName,
			State: info.State, Tries: o.Tries, Error: o.Error, Outbox: o.Outbox != "",
		})
		if moving {
			info = withLive(info, l)
		}
		st.Transfers = append(st.Transfers, info)
	}
	for _, o := range act.Ended {
		st.Transfers = append(st.Transfers, v.outgoing(o, names, false))
	}
	for _, rec := range act.Receiving {
		l, moving := v.live.get(liveKey{incoming, rec.Peer, rec.ID}, now)
		info := v.incoming(rec, names, moving)
		if moving {
			info = withLive(info, l)
		}
		st.Transfers = append(st.Transfers, info)
	}
	for _, rec := range act.Received {
		st.Transfers = append(st.Transfers, v.incoming(rec, names, false))
	}
	slices.SortStableFunc(st.Transfers, func(a, b control.TransferInfo) int { return cmpState(a.State) - cmpState(b.State) })
	return st, nil
}

// cmpState orders status rows: moving first, then waiting, then ended.
func cmpState(s string) int {
	return slices.Index([]string{control.TransferSending, control.TransferReceiving, control.TransferQueued, control.TransferFailed, control.TransferDone}, s)
}

// outgoingInfos shows transfers just queued.
func (v *transferView) outgoingInfos(items []store.Outgoing) []control.TransferInfo {
	names := v.peerNames()
	out := make([]control.TransferInfo, len(items))
	for i, o := range items {
		out[i] = v.outgoing(o, names, false)
	}
	return out
}

func (v *transferView) publish(info control.TransferInfo) {
	v.events.publish(control.Event{Kind: control.EventTransfer, Transfer: &info})
}

// sendAttempting publishes that an attempt at o starts.
func (v *transferView) sendAttempting(o store.Outgoing) {
	v.publish(v.outgoing(o, v.peerNames(), true))
}

// sendProgress tracks o's progress and publishes it now and then.
func (v *transferView) sendProgress(o store.Outgoing, done int64) {
	l, _, publish := v.live.report(liveKey{outgoing, o.Peer, o.ID}, o.Size, done, time.Now())
	if publish {
		v.publish(withLive(v.outgoing(o, v.peerNames(), true), l))
	}
}

// sendStored ends o's progress, if it moved, and publishes its state.
func (v *transferView) sendStored(o store.Outgoing) {
	v.live.stop(liveKey{outgoing, o.Peer, o.ID})
	v.publish(v.outgoing(o, v.peerNames(), false))
}

// receiveProgress is the Receiver's progress callback: it tracks rec's
// progress and publishes it now and then, at once for a new transfer.
func (v *transferView) receiveProgress(rec transfer.Record, done int64) {
	l, started, publish := v.live.report(liveKey{incoming, rec.Peer, rec.ID}, rec.Size, done, time.Now())
	if started || publish {
		v.publish(withLive(v.incoming(rec, v.peerNames(), true), l))
	}
}

// receiveEnded ends rec's progress and publishes how the attempt to
// receive it ended: err is Receive's.
func (v *transferView) receiveEnded(rec transfer.Record, err error) {
	info := v.incoming(rec, v.peerNames(), false)
	if l, ok := v.live.stop(liveKey{incoming, rec.Peer, rec.ID}); ok {
		info.Done = l.done
	}
	if err != nil {
		info.State, info.Error = control.TransferFailed, err.Error()
		if transfer.Retryable(err) {
			info.State = control.TransferQueued // the sender will offer it again
		}
	}
	v.publish(info)
}
