package agent

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/punchdrop/punchdrop/agent/scheduler"
	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/session"
	"github.com/punchdrop/punchdrop/store"
	"github.com/punchdrop/punchdrop/transfer"
)

// sessionWait bounds one wait for a session before the attempt counts as
// failed and backs off; the node keeps punching meanwhile.
const sessionWait = 90 * time.Second

// queueFiles adds files and folders for peer and starts sending them. A
// non-empty as renames a single file for the receiver.
func (a *Agent) queueFiles(peer session.NodeID, paths []string, as string) ([]control.TransferInfo, error) {
	var items []store.Outgoing
	now := time.Now().UTC()
	for _, p := range paths {
		files, err := expand(p, nil)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			items = append(items, f.outgoing(peer.String(), now))
		}
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%w: nothing to send (empty folders only)", errBadRequest)
	}
	if as != "" {
		if len(items) != 1 {
			return nil, fmt.Errorf("%w: a new name is for a single file", errBadRequest)
		}
		items[0].Name = as // the receiver makes it safe, or refuses it
	}
	if err := a.store.AddOutgoing(items...); err != nil {
		return nil, err
	}
	a.log.Info("queued", "files", len(items), "peer", peer.Short())
	a.sched.Queued(items)
	return a.view.outgoingInfos(items), nil
}

// nodeSender makes the scheduler's attempts over the node's sessions.
type nodeSender struct {
	node  *session.Node
	lanes func() int // how many lanes a file may go on (config: lanes)
	// spoken remembers the protocol version of peers that speak an older
	// one than ours, per session, so that only a session's first file
	// pays the round trip of offering ours.
	spoken *spokenVersions
}

// spokenVersions is the transfer protocol version each peer's session
// took files in, where older than transfer.Version. A new session (the
// peer may have been updated) negotiates afresh.
type spokenVersions struct {
	mu sync.Mutex // guards following
	by map[session.NodeID]spokenBy
}

type spokenBy struct {
	sess    *session.Session
	version uint8
}

// version is the version to offer files to sess in: zero for ours.
func (v *spokenVersions) version(sess *session.Session) uint8 {
	v.mu.Lock()
	defer v.mu.Unlock()
	if s, ok := v.by[sess.Peer]; ok && s.sess == sess {
		return s.version
	}
	return 0
}

// took notes that sess took a file in version (zero: no offer made).
func (v *spokenVersions) took(sess *session.Session, version uint8) {
	if version == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if version == transfer.Version {
		delete(v.by, sess.Peer)
		return
	}
	if v.by == nil {
		v.by = map[session.NodeID]spokenBy{}
	}
	v.by[sess.Peer] = spokenBy{sess, version}
}

// lanes is the config's lanes.
func (a *Agent) lanes() int {
	a.cfgMu.Lock()
	defer a.cfgMu.Unlock()
	return a.cfg.Lanes
}

func (n nodeSender) Send(ctx context.Context, o store.Outgoing, chunkSize int, progress transfer.Progress) (transfer.Result, error) {
	id, err := transfer.ParseID(o.ID)
	if err != nil {
		return transfer.Result{}, &transfer.Error{Code: transfer.CodeRefused, Reason: err.Error()}
	}
	peer, err := session.ParseNodeID(o.Peer)
	if err != nil {
		return transfer.Result{}, err
	}
	waitCtx, cancel := context.WithTimeout(ctx, sessionWait)
	sess, err := n.node.WaitSession(waitCtx, peer)
	cancel()
	if errors.Is(err, session.ErrNoPeer) {
		return transfer.Result{}, noPeer{err}
	}
	if err != nil {
		return transfer.Result{}, err
	}
	open := func(ctx context.Context) (transfer.Stream, error) { return sess.OpenTransferStream(ctx) }
	lanes := func(ctx context.Context, k int) []transfer.Stream {
		var out []transfer.Stream
		for _, s := range sess.OpenLanes(ctx, k) {
			out = append(out, s)
		}
		return out
	}
	src := transfer.Source{ID: id, Path: o.Path, Name: o.Name, ChunkSize: chunkSize, Lanes: lanes, MaxLanes: n.lanes(), Version: n.spoken.version(sess)}
	res, err := transfer.SendOver(ctx, open, src, progress)
	if err == nil {
		n.spoken.took(sess, res.Version)
	}
	return res, asMoved(err)
}

// asMoved tells the scheduler when an attempt was cut off by its session
// moving to a newer one, so that it starts again at once.
func asMoved(err error) error {
	if session.Moved(err) {
		return moved{err}
	}
	return err
}

// noPeer is session.ErrNoPeer as the scheduler knows it, in its words.
type noPeer struct{ error }

func (noPeer) Is(target error) bool { return target == scheduler.ErrNoPeer }
func (e noPeer) Unwrap() error      { return e.error }

// moved is a session that moved to a newer one, as the scheduler knows it.
type moved struct{ error }

func (moved) Is(target error) bool { return target == scheduler.ErrMoved }
func (e moved) Unwrap() error      { return e.error }

// sendObserver is the scheduler's Observer: the view shows every change,
// and a file sent from the outbox is settled there.
type sendObserver struct {
	view   *transferView
	outbox func() *outbox
}

func (s sendObserver) Attempting(o store.Outgoing) { s.view.sendAttempting(o) }

func (s sendObserver) Progress(o store.Outgoing, done int64) { s.view.sendProgress(o, done) }

func (s sendObserver) Stored(o store.Outgoing) {
	s.view.sendStored(o)
	if o.State == store.OutgoingDone && o.Outbox != "" {
		s.outbox().settle(o.Outbox)
	}
}
