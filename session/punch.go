package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// Timings of punching and path choice. Each trades reacting fast against
// sending little; the reason for each value is next to it.
const (
	// DefaultPunchTimeout is how long a node probes a peer before it says
	// the peer cannot be reached directly. A minute covers a peer that
	// pastes our string a little after we pasted theirs.
	DefaultPunchTimeout = time.Minute
	// probeInterval is the gap between probe rounds: fast enough that a
	// hole opens within a fraction of a second once both sides probe,
	// slow enough to be a trickle (a few hundred bytes per round).
	probeInterval = 200 * time.Millisecond
	// minRetry and maxRetry bound the back-off between punch attempts to
	// an unreachable peer.
	minRetry = 2 * time.Second
	maxRetry = 5 * time.Minute
	// redialInterval limits how often the dialer dials a peer it is
	// connected to: again because the peer's probes say it lost the
	// session (it restarted), or to move to a better path that answered.
	redialInterval = 3 * time.Second
	// minUpgradeProbe and maxUpgradeProbe bound the gap between probes to
	// the better candidates of a peer we are connected to over a worse
	// path. A better path that appears (a laptop joins its peer's LAN)
	// is found within seconds; one that never answers (the peer's LAN
	// addresses, seen from another network) costs, once the gap has
	// doubled to its cap, one probe per candidate a minute.
	minUpgradeProbe = 2 * time.Second
	maxUpgradeProbe = time.Minute
	// maxRelayUpgradeProbe caps that gap while the session runs over a
	// relay: every byte then crosses someone else's server, so a direct
	// path that opens (a NAT that becomes easy, a port forwarded) is
	// worth finding within seconds, at the cost of one probe per better
	// candidate every 10 s.
	maxRelayUpgradeProbe = 10 * time.Second
	// relayGrace is how long the dialer waits, once a relay path
	// answered, for a direct or LAN path to answer too: one that exists
	// does within a few probe rounds once both sides probe, and waiting
	// a second saves moving the session right after it starts, while
	// leaving it well within 5 s of both sides trying when no other path
	// answers.
	relayGrace = time.Second
)

// runPeer keeps one peer connected for as long as ctx lives: punch, dial
// or accept, hold the session (moving it to better paths), and start over
// when it dies.
func (n *Node) runPeer(ctx context.Context, p *peer) {
	retry := minRetry
	for ctx.Err() == nil {
		n.setState(p, StateConnecting, nil, "")
		sess, err := n.punch(ctx, p)
		keep := LocalUDP
		if err == nil {
			keep = sess.Path.Local
		}
		n.closeSpares(p.id, keep) // birthday probing is over; its winner stays
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			n.log.Info("peer unreachable", "peer", p.id.Short(), "err", err, "retry", retry)
			n.setState(p, StateOffline, nil, err.Error())
			select {
			case <-ctx.Done():
			case <-p.wake:
			case <-time.After(retry):
			case sess := <-p.arrived:
				retry = minRetry
				n.hold(ctx, p, sess)
				continue
			}
			retry = min(retry*2, maxRetry)
			continue
		}
		retry = minRetry
		n.hold(ctx, p, sess)
		n.closeSpares(p.id, LocalUDP)
	}
	if s := p.session(); s != nil {
		s.close("shutting down")
	}
}

// punch probes every candidate of p until a session is up or the punch
// timeout passes. The node with the smaller ID dials the best path that
// acknowledged a probe; the other waits for that dial. A relay path that
// answers first waits up to relayGrace for a better one.
func (n *Node) punch(ctx context.Context, p *peer) (*Session, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.PunchTimeout)
	defer cancel()
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	dialer := n.ID().Less(p.id)
	drain(p.acks) // answers to an earlier round may name a dead path
	// Birthday probing does not start once a relay path answered. It
	// starts with the punch if the node knows its part then, or later
	// in the punch once it does: the node's NAT discovery ends (a node
	// punches the peers it had as it starts, before it knows its NAT),
	// or the peer's NAT turns out hard (it told so, or its record did);
	// each wakes the peer.
	var relayAnswered atomic.Bool
	var stopBirthday func()
	defer func() {
		if stopBirthday != nil {
			stopBirthday()
		}
	}()
	startBirthday := func() {
		if stopBirthday != nil {
			return // started already
		}
		role := n.birthdayRole(p)
		if role == birthdayNone {
			return
		}
		bctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); n.birthday(bctx, p, role, relayAnswered.Load) }()
		stopBirthday = func() {
			stop()
			<-done
		}
	}
	startBirthday()
	probeAll := func() { n.sendProbes(p, p.candidates(n.localsFor(p))) }
	probeAll()
	var relay route                // the relay path that answered, while it waits
	var graceOver <-chan time.Time // set once a relay path answered
	relayDue := false              // the grace is over: dial relay paths at once
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, n.unreachable(p)
			}
			return nil, ctx.Err()
		case sess := <-p.arrived:
			return sess, nil
		case r := <-p.acks:
			if p.pathTo(r).Kind == PathRelay {
				relayAnswered.Store(true)
			}
			if !dialer {
				continue
			}
			r = bestAnswer(p, r)
			if p.pathTo(r).Kind == PathRelay && !relayDue {
				relay = r
				if graceOver == nil {
					graceOver = time.After(relayGrace)
				}
				continue
			}
			if sess := n.tryDial(ctx, p, r); sess != nil {
				return sess, nil
			}
		case <-graceOver:
			graceOver, relayDue = nil, true
			if sess := n.tryDial(ctx, p, relay); sess != nil {
				return sess, nil
			}
		case <-p.wake:
			startBirthday()
			probeAll()
		case <-tick.C:
			probeAll()
		}
	}
}

// unreachable says why punching p gave up, and what would help.
func (n *Node) unreachable(p *peer) error {
	paths := p.candidates(n.localsFor(p))
	hint := "both NATs may be symmetric or strict; a TURN relay on either side gets through (config key relays)"
	if slices.ContainsFunc(paths, func(p Path) bool { return p.Kind == PathRelay }) {
		hint = "both NATs may be symmetric or strict, and no relay path answered either"
	}
	return fmt.Errorf("%w: no answer from %d path(s) in %s; %s", ErrUnreachable, len(paths), n.cfg.PunchTimeout, hint)
}

// tryDial dials p on r, and logs why if that fails.
func (n *Node) tryDial(ctx context.Context, p *peer, r route) *Session {
	sess, err := n.dial(ctx, p, r)
	if err != nil {
		n.log.Debug("dial failed", "peer", p.id.Short(), "path", p.pathTo(r), "err", err)
		return nil
	}
	return sess
}

// bestAnswer returns the best of first and the other acks already
// queued: a round's answers arrive together, and a LAN answer just behind
// a direct one saves a move right after connecting.
func bestAnswer(p *peer, first route) route {
	best := p.pathTo(first)
	for {
		select {
		case r := <-p.acks:
			if next := p.pathTo(r); next.Better(best) {
				best = next
			}
		default:
			return best.route()
		}
	}
}

// hold keeps a session as the peer's until it dies, and replaces it when
// the peer dials again. The dialer also moves it: to a better path that
// answers the probes it sends now and then to the peer's better
// candidates, and to where the peer's probes come from once they say it
// lost the session, or come on a better path. While the session runs
// over a relay, both sides probe the better candidates (either NAT may
// need our probe before it lets the peer's in), and more often; on any
// other path only the dialer does, so that a probe from a connected peer
// on a path no better than the session's always means it lost it.
func (n *Node) hold(ctx context.Context, p *peer, sess *Session) {
	n.connected(p, sess)
	dialer := n.ID().Less(p.id)
	// Probes that were in flight while the session was made (or replaced
	// by a newer one) are no sign of a lost session; only probes that
	// keep coming are. A better path may be taken at once.
	lastRedial, lastMove := time.Now(), time.Time{}
	take := func(newer *Session, why string) {
		sess = n.replace(p, sess, newer, why)
		lastRedial = time.Now()
	}
	redial := func(r route, why string, last *time.Time) {
		if time.Since(*last) < redialInterval {
			return
		}
		*last = time.Now()
		newer, err := n.dial(ctx, p, r)
		if err != nil {
			n.log.Debug("dial failed", "peer", p.id.Short(), "path", p.pathTo(r), "why", why, "err", err)
			return
		}
		take(newer, why)
	}
	current := func() Path { return p.pathTo(sess.Path.route()) }
	searching := func() bool { return dialer || current().Kind == PathRelay }
	probeBetter := func() { n.sendProbes(p, p.betterThan(current(), n.localsFor(p))) }
	gap := minUpgradeProbe
	upgrade := time.NewTimer(gap)
	defer upgrade.Stop()
	var acks, probed <-chan route // the acceptor leaves these nil
	if dialer {
		acks, probed = p.acks, p.probed
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-sess.conn.Context().Done():
			n.log.Info("session ended", "session", sess, "err", context.Cause(sess.conn.Context()))
			p.heard()
			return
		case newer := <-p.arrived:
			take(newer, "replaced by a newer session")
		case <-p.wake: // new candidates, or our network changed
			if searching() {
				gap = minUpgradeProbe
				probeBetter()
				upgrade.Reset(gap)
			}
		case <-upgrade.C:
			if searching() {
				probeBetter()
			}
			maxGap := maxUpgradeProbe
			if current().Kind == PathRelay {
				maxGap = maxRelayUpgradeProbe
			}
			gap = min(2*gap, maxGap)
			upgrade.Reset(gap)
		case r := <-acks:
			if p.pathTo(r).Better(current()) {
				redial(r, "moved to a better path", &lastMove)
			}
		case r := <-probed:
			if p.pathTo(r).Better(current()) {
				redial(r, "moved to a better path the peer probes", &lastMove)
			} else {
				redial(r, "the peer lost the session", &lastRedial)
			}
		}
	}
}

// replace makes newer the peer's session and closes old. The old one is
// closed first, so that whatever ran on it (a transfer) has failed by the
// time the owner hears the peer is connected again and retries.
func (n *Node) replace(p *peer, old, newer *Session, why string) *Session {
	old.replaced(why)
	n.log.Info("session replaced", "why", why, "old", old, "new", newer)
	n.connected(p, newer)
	return newer
}

// connected makes sess the peer's session, says so, and tells the peer
// our candidates over it. The handshake measured its path's round trip.
// A relay path's address is not reported to the owner: it means nothing
// once the allocation it went through or to is gone.
func (n *Node) connected(p *peer, sess *Session) {
	p.mu.Lock()
	p.paths.noteRTT(sess.Path.route(), sess.RTT())
	p.mu.Unlock()
	n.setState(p, StateConnected, sess, "")
	n.log.Info("peer connected", "session", sess)
	n.tellCandidates(sess, n.news())
	if n.cfg.Events.PeerAddr != nil && sess.Path.Kind != PathRelay {
		n.cfg.Events.PeerAddr(p.id, sess.Path.Addr)
	}
}
