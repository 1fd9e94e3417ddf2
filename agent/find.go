package agent

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/punchdrop/punchdrop/agent/finder"
	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/dht"
	"github.com/punchdrop/punchdrop/session"
	"github.com/punchdrop/punchdrop/store"
)

// NoDHT is the --dht-bootstrap word that turns the DHT off for a run.
const NoDHT = "none"

// dhtBootstrap returns the DHT nodes to join through, or nil when the DHT
// is off: --dht-bootstrap (override) wins over the config, NoDHT among it
// turns the DHT off, and an empty dht_bootstrap means the mainline DHT's
// routers.
func dhtBootstrap(cfg Config, override []string) []string {
	switch {
	case slices.Contains(override, NoDHT):
		return nil
	case len(override) > 0:
		return override
	case !cfg.DHT:
		return nil
	case len(cfg.DHTBootstrap) > 0:
		return cfg.DHTBootstrap
	}
	return dht.DefaultBootstrap()
}

// finding is the agent's finder.Service, which a config reload may stop
// or replace while the agent runs.
type finding struct {
	mu        sync.Mutex // guards following
	svc       *finder.Service
	bootstrap []string // svc's
	stop      func()   // ends svc.Run and waits for it
}

// finder returns the running finder.Service, or nil when the DHT is off.
func (a *Agent) finder() *finder.Service {
	a.find.mu.Lock()
	defer a.find.mu.Unlock()
	return a.find.svc
}

// finderBootstrap returns the DHT nodes the running finder.Service joins
// through; nil if none runs.
func (a *Agent) finderBootstrap() []string {
	a.find.mu.Lock()
	defer a.find.mu.Unlock()
	return a.find.bootstrap
}

// startFinder starts publishing and looking up on the DHT through
// bootstrap (nil: the DHT is off) until ctx ends or stopFinder. It tracks
// every peer as the node sees it now.
func (a *Agent) startFinder(ctx context.Context, bootstrap []string) error {
	if len(bootstrap) == 0 {
		a.log.Info("the DHT is off: peers that move while apart cannot be found")
		return nil
	}
	svc, err := finder.New(finder.Config{Key: a.ident.Key, Bootstrap: bootstrap, Logger: a.log, Held: a.heldRecordSeq, Found: a.foundOnDHT})
	if err != nil {
		return err
	}
	for _, st := range a.node.Peers() {
		svc.Track(st.ID)
		svc.SetConnected(st.ID, st.State == session.StateConnected)
	}
	svc.Publish(a.node.LocalCandidates(), a.node.OwnNAT() == session.NATHard)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := svc.Run(ctx); err != nil {
			a.log.Error("the DHT stopped", "err", err)
		}
	}()
	a.find.mu.Lock()
	a.find.svc, a.find.bootstrap, a.find.stop = svc, bootstrap, func() { cancel(); <-done }
	a.find.mu.Unlock()
	return nil
}

// stopFinder stops the finder.Service, if one runs, and waits for it.
func (a *Agent) stopFinder() {
	a.find.mu.Lock()
	stop := a.find.stop
	a.find.svc, a.find.bootstrap, a.find.stop = nil, nil, nil
	a.find.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// heldRecordSeq is the highest sequence number of peer id's record this
// node has opened, as the store keeps it.
func (a *Agent) heldRecordSeq(id session.NodeID) int64 {
	p, _ := a.storedPeer(id.String())
	return p.RecordSeq
}

// foundOnDHT takes a newer record of peer id: its sequence number is kept
// first (so that a replay of an older one is refused even after a
// restart), then its addresses are tried and remembered. A record that
// says the peer's NAT is hard makes it so for the node (before the
// addresses wake its loop, so that the punch they start plays its part
// in birthday probing) and the store; one that does not say so changes
// nothing, as a record of an older build cannot say it (the peer tells
// over the session that follows, if its NAT is easy now).
func (a *Agent) foundOnDHT(id session.NodeID, seq int64, cands []session.Candidate, hardNAT bool) {
	raised, err := a.store.RaiseRecordSeq(id, seq)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			a.log.Warn("keep a peer's record", "peer", id.Short(), "err", err)
		}
		return
	}
	if !raised {
		return
	}
	if hardNAT {
		if err := a.node.SetPeerHardNAT(id, true); err != nil {
			return // removed meanwhile
		}
		a.rememberHardNAT(id, true)
	}
	a.learned(id, cands)
}

// rememberHardNAT keeps whether peer id's NAT maps a new port per
// destination, as it told over a session or its record says, for the next
// start (store.Peer.HardNAT, handed to the node as PeerInfo.HardNAT).
func (a *Agent) rememberHardNAT(id session.NodeID, hard bool) {
	err := a.store.UpdatePeer(id, func(p *store.Peer) { p.HardNAT = hard })
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.log.Warn("remember a peer's kind of NAT", "peer", id.Short(), "err", err)
	}
}

// learned tries addresses of peer id learned from the DHT or the LAN and
// remembers them for the next start.
func (a *Agent) learned(id session.NodeID, cands []session.Candidate) {
	if len(cands) == 0 {
		return
	}
	if err := a.node.AddCandidates(id, cands...); err != nil {
		return // removed meanwhile
	}
	a.rememberLearned(id, cands)
}

// rememberLearned keeps addresses of peer id for the next start.
func (a *Agent) rememberLearned(id session.NodeID, cands []session.Candidate) {
	if err := a.store.NoteLearned(id, time.Now(), cands...); err != nil && !errors.Is(err, store.ErrNotFound) {
		a.log.Warn("remember a peer's addresses", "peer", id.Short(), "err", err)
	}
}

// lookupInfo is a peer's last DHT lookup for the control API; nil if
// there was none.
func lookupInfo(st finder.LookupStatus) *control.LookupInfo {
	if st.At.IsZero() {
		return nil
	}
	return &control.LookupInfo{At: st.At.UTC().Truncate(time.Second), Result: st.Result, Detail: st.Detail, Seq: st.Seq,
		Answered: st.Stats.Answered, Queried: st.Stats.Queried, TookMs: st.Stats.Took.Milliseconds()}
}

// dhtInfo describes the agent's DHT for the control API.
func (a *Agent) dhtInfo() *control.DHTInfo {
	svc := a.finder()
	if svc == nil {
		return dhtOff()
	}
	return dhtInfoOf(svc.Status())
}
