package session

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
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
)

// runPeer keeps one peer connected for as long as ctx lives: punch, dial
// or accept, hold the session (moving it to better paths), and start over
// when it dies.
func (n *Node) runPeer(ctx context.Context, p *peer) {
	retry := minRetry
	for ctx.Err() == nil {
		n.setState(p, StateConnecting, nil, "")
		sess, err := n.punch(ctx, p)
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
	}
	if s := p.session(); s != nil {
		s.close("shutting down")
	}
}

// punch probes every candidate of p until a session is up or the punch
// timeout passes. The node with the smaller ID dials the best path that
// acknowledged a probe; the other waits for that dial.
func (n *Node) punch(ctx context.Context, p *peer) (*Session, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.PunchTimeout)
	defer cancel()
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	dialer := n.ID().Less(p.id)
	drain(p.acks) // answers to an earlier round may name a dead path
	n.sendProbes(p, p.candidates())
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("%w: no answer from %d address(es) in %s; both NATs may be symmetric or strict", ErrUnreachable, len(p.candidates()), n.cfg.PunchTimeout)
			}
			return nil, ctx.Err()
		case sess := <-p.arrived:
			return sess, nil
		case addr := <-p.acks:
			if !dialer {
				continue
			}
			addr = bestAnswer(p, addr)
			sess, err := n.dial(ctx, p, addr)
			if err != nil {
				n.log.Debug("dial failed", "peer", p.id.Short(), "addr", addr, "err", err)
				continue
			}
			return sess, nil
		case <-p.wake:
			n.sendProbes(p, p.candidates())
		case <-tick.C:
			n.sendProbes(p, p.candidates())
		}
	}
}

// bestAnswer returns the best of first and the other acks already
// queued: a round's answers arrive together, and a LAN answer just behind
// a direct one saves a move right after connecting.
func bestAnswer(p *peer, first netip.AddrPort) netip.AddrPort {
	best := p.pathTo(first)
	for {
		select {
		case a := <-p.acks:
			if next := p.pathTo(a); next.Better(best) {
				best = next
			}
		default:
			return best.Addr
		}
	}
}

// hold keeps a session as the peer's until it dies, and replaces it when
// the peer dials again. The dialer also moves it: to a better path that
// answers the probes it sends now and then to the peer's better
// candidates, and to where the peer's probes come from once they say it
// lost the session. Only the dialer probes while connected, so that a
// probe from a connected peer always means that.
func (n *Node) hold(ctx context.Context, p *peer, sess *Session) {
	n.connected(p, sess)
	dialer := n.ID().Less(p.id)
	// Probes that were in flight while the session was made are no sign
	// of a lost session; only probes that keep coming are. A better path
	// may be taken at once.
	lastRedial, lastMove := time.Now(), time.Time{}
	redial := func(addr netip.AddrPort, why string, last *time.Time) {
		if time.Since(*last) < redialInterval {
			return
		}
		*last = time.Now()
		newer, err := n.dial(ctx, p, addr)
		if err != nil {
			n.log.Debug("dial failed", "peer", p.id.Short(), "addr", addr, "why", why, "err", err)
			return
		}
		sess = n.replace(p, sess, newer, why)
	}
	gap := minUpgradeProbe
	upgrade := time.NewTimer(gap)
	defer upgrade.Stop()
	var upgradeDue <-chan time.Time // the acceptor leaves these nil
	var acks, probed <-chan netip.AddrPort
	if dialer {
		upgradeDue, acks, probed = upgrade.C, p.acks, p.probed
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
			sess = n.replace(p, sess, newer, "replaced by a newer session")
		case <-p.wake: // new candidates, or our network changed
			if dialer {
				gap = minUpgradeProbe
				n.sendProbes(p, p.betterThan(sess.Path))
				upgrade.Reset(gap)
			}
		case <-upgradeDue:
			n.sendProbes(p, p.betterThan(sess.Path))
			gap = min(2*gap, maxUpgradeProbe)
			upgrade.Reset(gap)
		case addr := <-acks:
			if p.pathTo(addr).Better(sess.Path) {
				redial(addr, "moved to a better path", &lastMove)
			}
		case addr := <-probed:
			redial(addr, "the peer lost the session", &lastRedial)
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

// connected makes sess the peer's session and says so. The handshake
// measured its path's round trip.
func (n *Node) connected(p *peer, sess *Session) {
	p.mu.Lock()
	p.paths.noteRTT(sess.Path.Addr, sess.RTT())
	p.mu.Unlock()
	n.setState(p, StateConnected, sess, "")
	n.log.Info("peer connected", "session", sess)
	n.tellCandidates(sess, n.LocalCandidates())
	if n.cfg.Events.PeerAddr != nil {
		n.cfg.Events.PeerAddr(p.id, sess.Path.Addr)
	}
}
