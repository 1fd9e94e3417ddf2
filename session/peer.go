package session

import (
	"context"
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

// PeerInfo is what a Node needs to know about a peer.
type PeerInfo struct {
	ID         NodeID
	Name       string
	Candidates []netip.AddrPort // from its connection string
	LAN        []netip.AddrPort // the subset that are host candidates
	Relay      []netip.AddrPort // the subset that are relayed addresses
	// HardNAT says the peer's NAT maps a new port per destination (its
	// connection string says nat=hard, or it told so since: Events.PeerNAT):
	// birthday probing may reach it.
	HardNAT bool
	// Learned are addresses known from elsewhere: the last session's,
	// those the peer told us.
	Learned []Candidate
}

// candidates is what info says about the peer's addresses.
func (info PeerInfo) candidates() []Candidate {
	out := make([]Candidate, 0, len(info.Candidates)+len(info.Learned))
	for _, a := range info.Candidates {
		kind := PathDirect
		switch {
		case slices.Contains(info.LAN, a):
			kind = PathLAN
		case slices.Contains(info.Relay, a):
			kind = PathRelay
		}
		out = append(out, Candidate{Addr: a, Kind: kind, Source: SourceConnString})
	}
	return append(out, info.Learned...)
}

// PeerStatus is a snapshot of one peer for display.
type PeerStatus struct {
	ID    NodeID
	Name  string
	State PeerState
	// Path is the kind of the session's path, as the node knows it now
	// (a peer may tell later that an address is its relay's); empty
	// unless connected.
	Path PathKind
	Addr netip.AddrPort // the session's remote address, or zero
	RTT  time.Duration  // the session's round trip, as QUIC measures it
	// FoundVia is where the session's address had been learned when the
	// session was made (the same address told again later, say over the
	// session itself, does not change it); empty unless connected.
	FoundVia Source
	// LastSeen is when the peer was last heard from: now while connected,
	// else when its session ended or its last probe came; zero if never.
	LastSeen time.Time
	// HardNAT says the node takes the peer's NAT to map a new port per
	// destination (PeerInfo.HardNAT, or told since), so that birthday
	// probing may reach it.
	HardNAT bool
	Error   string // why the peer is offline, in words
	Paths   []Path // every candidate path, best first
}

// peer is a Node's view of one peer and the loop that connects to it.
type peer struct {
	id NodeID

	wake    chan struct{}      // something changed: probe now
	acks    chan route         // a path answered our probe
	probed  chan route         // the peer probes us although we are connected
	arrived chan *Session      // it dialed us and the handshake is done
	gone    chan struct{}      // closed when the peer is removed
	stop    context.CancelFunc // ends the loop; nil until started

	mu   sync.Mutex // guards following
	name string
	hard bool // its NAT maps a new port per destination (PeerInfo.HardNAT, or told since)
	// natToldBy is the session whose frame numbered natToldSeq last told
	// the NAT kind (gossip.go): an older frame of it is not taken.
	natToldBy  *Session
	natToldSeq uint64
	paths      pathSet
	sess       *Session
	state      PeerState
	lastErr    string
	// lastSeen is when the peer was last heard from outside a session.
	lastSeen time.Time
	changed  chan struct{}           // closed, and replaced, when state or sess changes
	sent     *lru[uint64, sentProbe] // our recent probe requests, by nonce
	seen     *lru[uint64, time.Time] // its recent request nonces, until when they count
}

func newPeer(info PeerInfo) *peer {
	p := &peer{
		id:      info.ID,
		name:    info.Name,
		hard:    info.HardNAT,
		wake:    make(chan struct{}, 1),
		acks:    make(chan route, 8),
		probed:  make(chan route, 1),
		arrived: make(chan *Session, 1),
		gone:    make(chan struct{}),
		state:   StateConnecting, // the loop starts punching at once
		changed: make(chan struct{}),
		sent:    newLRU[uint64, sentProbe](maxSentProbes),
		seen:    newLRU[uint64, time.Time](maxSeenRequests),
	}
	p.paths.learn(time.Now(), info.candidates()...)
	return p
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

// candidates lists every path to the peer out of the sockets locals,
// best first.
func (p *peer) candidates(locals []Local) []Path {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paths.all(locals)
}

// betterThan lists the paths to the peer out of locals of a better kind
// than current.
func (p *peer) betterThan(current Path, locals []Local) []Path {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paths.betterThan(current, locals)
}

// pathTo describes the path to the peer on route r.
func (p *peer) pathTo(r route) Path {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paths.path(r)
}

// addReflexive notes that the peer's probes came from r.addr to our
// socket r.local, and reports whether the address is new.
func (p *peer) addReflexive(r route) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	fresh := !p.paths.knowsIP(r.addr.Addr())
	p.paths.addReflexive(r, now)
	p.lastSeen = now
	return fresh
}

// isHard reports whether the peer's NAT maps a new port per destination.
func (p *peer) isHard() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hard
}

// publicCandidates lists the peer's addresses across the internet that are
// neither LAN nor relay ones, as learned (not where its probes came from).
func (p *peer) publicCandidates() []Candidate {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Candidate
	for _, c := range p.paths.learned {
		if c.Kind == PathDirect || c.Kind == "" {
			out = append(out, c.Candidate)
		}
	}
	return out
}

func (p *peer) session() *Session {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sess
}

// AddPeer configures a peer (or updates its name and candidates) and starts
// connecting when the node runs.
func (n *Node) AddPeer(info PeerInfo) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.peers[info.ID]; ok {
		p.mu.Lock()
		p.name = info.Name
		p.hard = info.HardNAT
		p.paths.learn(time.Now(), info.candidates()...)
		p.mu.Unlock()
		offer(p.wake, struct{}{})
		n.peersChangedLocked()
		return
	}
	p := newPeer(info)
	n.peers[info.ID] = p
	n.requested.remove(info.ID)
	if n.runCtx != nil {
		n.startPeerLocked(p)
	}
	n.peersChangedLocked()
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
	n.peersChangedLocked() // the relays stop letting its addresses in
	n.mu.Unlock()
	if ok {
		close(p.gone)
		if p.stop != nil {
			p.stop()
		}
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
		out = append(out, p.status(n.localsFor(p)))
	}
	return out
}

func (p *peer) status(locals []Local) PeerStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := PeerStatus{ID: p.id, Name: p.name, State: p.state, Error: p.lastErr, Paths: p.paths.all(locals), LastSeen: p.lastSeen, HardNAT: p.hard}
	if p.sess != nil {
		path := p.paths.path(p.sess.Path.route())
		st.Path = path.Kind
		st.Addr = p.sess.Path.Addr
		st.RTT = p.sess.RTT()
		st.FoundVia = p.sess.Path.Source
		st.LastSeen = time.Now()
	}
	return st
}

// sessionPath is the path of the peer's session as the node knows it
// now, and whether there is a session.
func (p *peer) sessionPath() (Path, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.sess == nil {
		return Path{}, false
	}
	return p.paths.path(p.sess.Path.route()), true
}

// heard notes that the peer was heard from now (a probe, a session that
// ended).
func (p *peer) heard() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastSeen = time.Now()
}

// AddCandidates tells the node more addresses of a peer (from the DHT,
// the LAN, the peer itself over a session), and wakes its loop to try
// them. Addresses it knows take the new kind and source; if that changes
// the kind of the session's path (the peer says it was its relay), the
// owner hears of the peer's new state.
func (n *Node) AddCandidates(id NodeID, cands ...Candidate) error {
	p := n.peer(id)
	if p == nil {
		return fmt.Errorf("%w: %s", ErrNoPeer, id.Short())
	}
	before, _ := p.sessionPath()
	p.mu.Lock()
	p.paths.learn(time.Now(), cands...)
	p.mu.Unlock()
	offer(p.wake, struct{}{})
	n.peersChanged()
	if after, ok := p.sessionPath(); ok && after.Kind != before.Kind && n.cfg.Events.PeerState != nil {
		n.cfg.Events.PeerState(p.status(n.localsFor(p)))
	}
	return nil
}

// SetPeerHardNAT sets whether peer id's NAT maps a new port per
// destination, as learned from elsewhere than its connection string (its
// rendezvous record): its next punch plays the part birthday probing
// gives it (birthdayRole). It returns ErrNoPeer for an unknown peer.
func (n *Node) SetPeerHardNAT(id NodeID, hard bool) error {
	p := n.peer(id)
	if p == nil {
		return fmt.Errorf("%w: %s", ErrNoPeer, id.Short())
	}
	p.mu.Lock()
	changed := p.hard != hard
	p.hard = hard
	p.mu.Unlock()
	if changed {
		offer(p.wake, struct{}{}) // a punch under way may now know its part in birthday probing
	}
	return nil
}

// setState records where the peer stands, wakes WaitSession, and tells
// the owner if anything changed.
func (n *Node) setState(p *peer, state PeerState, sess *Session, reason string) {
	p.mu.Lock()
	changed := p.state != state || p.sess != sess
	p.state, p.sess, p.lastErr = state, sess, reason
	if changed {
		close(p.changed)
		p.changed = make(chan struct{})
	}
	p.mu.Unlock()
	if changed && n.cfg.Events.PeerState != nil {
		n.cfg.Events.PeerState(p.status(n.localsFor(p)))
	}
}

// WaitSession returns the peer's session; without one, it wakes the
// peer's loop (to punch now) and waits for one until ctx ends.
func (n *Node) WaitSession(ctx context.Context, id NodeID) (*Session, error) {
	p := n.peer(id)
	if p == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoPeer, id.Short())
	}
	for woken := false; ; woken = true {
		p.mu.Lock()
		sess, changed := p.sess, p.changed
		p.mu.Unlock()
		// A session that ended is not returned: the peer loop notices at
		// once and changes the state, which wakes this loop.
		if sess != nil && sess.conn.Context().Err() == nil {
			return sess, nil
		}
		if !woken {
			offer(p.wake, struct{}{})
		}
		select {
		case <-ctx.Done():
			st := p.status(nil)
			if st.Error != "" {
				return nil, fmt.Errorf("%s is %s: %s", id.Short(), st.State, st.Error)
			}
			return nil, fmt.Errorf("%s is %s: %w", id.Short(), st.State, ctx.Err())
		case <-p.gone:
			return nil, ErrPeerRemoved
		case <-changed:
		}
	}
}
