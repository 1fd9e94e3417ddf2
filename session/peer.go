package session

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// PeerState is where a peer stands, as shown to the user.
type PeerState string

// Peer states.
const (
	StateConnected  PeerState = "connected"  // a session is up
	StateConnecting PeerState = "connecting" // punching or handshaking
	StateOffline    PeerState = "offline"    // no path now; retried with back-off
)

// Path says how a session reaches its peer. Lower Priority is better.
type Path string

// Paths.
const (
	PathLAN    Path = "lan"    // a host candidate: same network
	PathDirect Path = "direct" // through the NATs, punched
)

// Priority ranks paths; lower is better, as in syncthing's dialers.
func (p Path) Priority() int {
	switch p {
	case PathLAN:
		return 10
	case PathDirect:
		return 30
	}
	return 100
}

// maxReflexive bounds the peer-reflexive addresses kept per peer: the
// addresses its probes really came from. A symmetric NAT shows a new one per
// destination, but only the latest few matter.
const maxReflexive = 4

// PeerInfo is what a Node needs to know about a peer.
type PeerInfo struct {
	ID         NodeID
	Name       string
	Candidates []netip.AddrPort // from its connection string and past sessions
	LAN        []netip.AddrPort // the subset that are host candidates
}

// PeerStatus is a snapshot of one peer for display.
type PeerStatus struct {
	ID    NodeID
	Name  string
	State PeerState
	Path  Path           // empty unless connected
	Addr  netip.AddrPort // the session's remote address, or zero
	RTT   time.Duration
	Error string // why the peer is offline, in words
}

// peer is a Node's view of one peer and the loop that connects to it.
type peer struct {
	info PeerInfo

	wake    chan struct{}       // something changed: punch now
	acks    chan netip.AddrPort // a path answered our probe
	probed  chan netip.AddrPort // the peer probes us although we think we are connected
	arrived chan *Session       // it dialed us and the handshake is done
	stop    context.CancelFunc  // ends the loop; nil until started

	mu        sync.Mutex // guards following
	reflexive []netip.AddrPort
	sess      *Session
	state     PeerState
	lastErr   string
	sent      *lru[uint64, sentProbe] // our recent probe requests, by nonce
	seen      *lru[uint64, time.Time] // its recent request nonces, until when they count
}

func newPeer(info PeerInfo) *peer {
	return &peer{
		info:    info,
		wake:    make(chan struct{}, 1),
		acks:    make(chan netip.AddrPort, 8),
		probed:  make(chan netip.AddrPort, 1),
		arrived: make(chan *Session, 1),
		state:   StateConnecting, // the loop starts punching at once
		sent:    newLRU[uint64, sentProbe](maxSentProbes),
		seen:    newLRU[uint64, time.Time](maxSeenRequests),
	}
}

// offer sends v on ch unless ch is full: the loop already has work queued.
func offer[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// drain empties ch without blocking.
func drain[T any](ch chan T) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func (p *peer) candidates() []netip.AddrPort {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.info.Candidates)
	for _, a := range p.reflexive {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func (p *peer) addReflexive(a netip.AddrPort) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if slices.Contains(p.reflexive, a) || slices.Contains(p.info.Candidates, a) {
		return
	}
	p.reflexive = append(p.reflexive, a)
	if len(p.reflexive) > maxReflexive {
		p.reflexive = p.reflexive[1:]
	}
}

func (p *peer) session() *Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sess
}

func (p *peer) pathOf(a netip.AddrPort) Path {
	if slices.Contains(p.info.LAN, a) {
		return PathLAN
	}
	return PathDirect
}

// AddPeer configures a peer (or updates its name and candidates) and starts
// connecting when the node runs.
func (n *Node) AddPeer(info PeerInfo) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.peers[info.ID]; ok {
		p.mu.Lock()
		p.info.Name = info.Name
		for _, a := range info.Candidates {
			if !slices.Contains(p.info.Candidates, a) {
				p.info.Candidates = append(p.info.Candidates, a)
			}
		}
		for _, a := range info.LAN {
			if !slices.Contains(p.info.LAN, a) {
				p.info.LAN = append(p.info.LAN, a)
			}
		}
		p.mu.Unlock()
		offer(p.wake, struct{}{})
		return
	}
	p := newPeer(info)
	n.peers[info.ID] = p
	n.requested.remove(info.ID)
	if n.runCtx != nil {
		n.startPeerLocked(p)
	}
}

// RemovePeer forgets a peer. When it returns, nothing from that key is
// accepted any more: every session with it is closed (also one not yet
// taken by the peer loop; one still being made is refused when it is
// registered), and every handler of its streams has returned. It waits
// for those handlers, so it must not be called from an Events callback.
func (n *Node) RemovePeer(id NodeID) {
	n.mu.Lock()
	p, ok := n.peers[id]
	delete(n.peers, id)
	sessions := n.sessionsWithLocked(id)
	n.mu.Unlock()
	if ok && p.stop != nil {
		p.stop()
	}
	closeAll(sessions, "peer removed")
	if ok {
		drain(p.arrived) // registered before the removal, so closed above
	}
	for _, s := range sessions {
		s.handlers.Wait()
	}
}

// sessionsWithLocked lists the live sessions with id, whichever peer
// configuration they were made for.
func (n *Node) sessionsWithLocked(id NodeID) []*Session {
	var out []*Session
	for s := range n.sessions {
		if s.Peer == id {
			out = append(out, s)
		}
	}
	return out
}

// closeAll closes sessions in parallel and returns when all are closed.
func closeAll(sessions []*Session, reason string) {
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() { s.close(reason) })
	}
	wg.Wait()
}

func (n *Node) startPeerLocked(p *peer) {
	ctx, cancel := context.WithCancel(n.runCtx)
	p.stop = cancel
	n.wg.Go(func() { n.runPeer(ctx, p) })
}

func (n *Node) wakeAll() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, p := range n.peers {
		offer(p.wake, struct{}{})
	}
}

// Peers returns a snapshot of every configured peer.
func (n *Node) Peers() []PeerStatus {
	n.mu.Lock()
	peers := make([]*peer, 0, len(n.peers))
	for _, p := range n.peers {
		peers = append(peers, p)
	}
	n.mu.Unlock()
	out := make([]PeerStatus, 0, len(peers))
	for _, p := range peers {
		out = append(out, p.status())
	}
	return out
}

func (p *peer) status() PeerStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := PeerStatus{ID: p.info.ID, Name: p.info.Name, State: p.state, Error: p.lastErr}
	if p.sess != nil {
		st.Path = p.sess.Path
		st.Addr = p.sess.Addr
		st.RTT = p.sess.RTT()
	}
	return st
}

func (n *Node) setState(p *peer, state PeerState, sess *Session, reason string) {
	p.mu.Lock()
	changed := p.state != state || p.sess != sess
	p.state, p.sess, p.lastErr = state, sess, reason
	p.mu.Unlock()
	if changed && n.cfg.Events.PeerState != nil {
		n.cfg.Events.PeerState(p.status())
	}
}

// runPeer keeps one peer connected for as long as ctx lives: punch, dial
// or accept, hold the session, and start over when it dies.
func (n *Node) runPeer(ctx context.Context, p *peer) {
	retry := minRetry
	for ctx.Err() == nil {
		n.setState(p, StateConnecting, nil, "")
		sess, err := n.punch(ctx, p)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			n.log.Info("peer unreachable", "peer", p.info.ID.Short(), "err", err, "retry", retry)
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

// hold keeps a session as the peer's until it dies, replacing it when the
// peer dials again or, when we are the dialer, when the peer's probes say it
// lost the session.
func (n *Node) hold(ctx context.Context, p *peer, sess *Session) {
	// Probes that were in flight while the session was made are no sign
	// of a lost session; only probes that keep coming are.
	lastRedial := time.Now()
	n.connected(p, sess)
	for {
		select {
		case <-ctx.Done():
			return
		case <-sess.Conn.Context().Done():
			n.log.Info("session ended", "session", sess, "err", context.Cause(sess.Conn.Context()))
			return
		case newer := <-p.arrived:
			sess.close("replaced by a newer session")
			sess = newer
			n.connected(p, sess)
		case addr := <-p.probed:
			if !n.ID().Less(p.info.ID) || time.Since(lastRedial) < redialInterval {
				continue
			}
			lastRedial = time.Now()
			if newer, err := n.dial(ctx, p, addr); err == nil {
				sess.close("replaced by a newer session")
				sess = newer
				n.connected(p, sess)
			}
		}
	}
}

// connected makes sess the peer's session and says so.
func (n *Node) connected(p *peer, sess *Session) {
	n.setState(p, StateConnected, sess, "")
	n.log.Info("peer connected", "session", sess)
	if n.cfg.Events.PeerAddr != nil {
		n.cfg.Events.PeerAddr(p.info.ID, sess.Addr)
	}
}

// punch probes every candidate of p until a session is up or the punch
// timeout passes. The node with the smaller ID dials the first path that
// acknowledges a probe; the other waits for that dial.
func (n *Node) punch(ctx context.Context, p *peer) (*Session, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.PunchTimeout)
	defer cancel()
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	dialer := n.ID().Less(p.info.ID)
	drain(p.acks) // answers to an earlier round may name a dead path
	n.sendProbes(p)
	for {
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				cands := p.candidates()
				return nil, fmt.Errorf("%w: no answer from %d address(es) in %s; both NATs may be symmetric or strict", ErrUnreachable, len(cands), n.cfg.PunchTimeout)
			}
			return nil, ctx.Err()
		case sess := <-p.arrived:
			return sess, nil
		case addr := <-p.acks:
			if !dialer {
				continue
			}
			sess, err := n.dial(ctx, p, addr)
			if err != nil {
				n.log.Debug("dial failed", "peer", p.info.ID.Short(), "addr", addr, "err", err)
				continue
			}
			return sess, nil
		case <-p.wake:
			n.sendProbes(p)
		case <-tick.C:
			n.sendProbes(p)
		}
	}
}
