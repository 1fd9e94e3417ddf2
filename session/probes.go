package session

import (
	"crypto/rand"
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/punchdrop/punchdrop/session/probe"
)

// Probe freshness and the memory that stops replays.
const (
	// probeClockWindow is how far a probe's time may be from our clock,
	// either way, for it to be taken: wide enough for computers whose
	// clocks drift between NTP corrections, narrow enough that a recorded
	// probe is useless soon after.
	probeClockWindow = 2 * time.Minute
	// maxSeenRequests bounds the request nonces remembered per peer
	// (each until its probe is too old to be taken): a peer probes each of
	// our addresses 5 times a second, and twice the window (its clock may
	// run ahead) on up to 6 paths is 3600 nonces.
	maxSeenRequests = 4096
	// sentProbeTTL is how long a probe we sent may be acknowledged: an
	// ack comes back within one round trip, so 10 s is generous.
	sentProbeTTL = 10 * time.Second
	// maxSentProbes bounds the probes remembered per peer to match acks:
	// 5 rounds a second to at most 13 candidates for sentProbeTTL is 650,
	// and birthday probing adds a round of 1024 random ports (or 256
	// spares' probes every 2 s, 1280 in sentProbeTTL).
	maxSentProbes = 4096
	// clockLogInterval spaces warnings about probes whose time is far
	// from ours: one line says it, a flood of them would fill the log.
	clockLogInterval = time.Minute
)

// sentProbe is a probe request we sent, which only an ack from its
// address, on the socket it left from, may answer.
type sentProbe struct {
	to route
	at time.Time
}

// sendProbes sends one probe request to p on each of paths.
func (n *Node) sendProbes(p *peer, paths []Path) {
	for _, path := range paths {
		nonce := randomNonce()
		p.noteSent(nonce, path.route())
		n.sendProbe(probe.Request, p.id, path.route(), nonce)
		n.probesSent.Add(1)
	}
}

func (n *Node) sendProbe(t probe.Type, to NodeID, r route, nonce uint64) {
	pr := probe.Probe{Type: t, From: n.ID(), To: to, Nonce: nonce, Time: time.Now(), Name: n.name()}
	b, err := pr.Marshal(n.cfg.Identity.Key)
	if err != nil {
		n.log.Error("encode probe", "err", err)
		return
	}
	if err := n.writeTo(b, r); err != nil {
		n.log.Debug("send probe", "to", r.addr, "socket", r.local, "err", err)
	}
}

func randomNonce() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// handleProbe answers a probe from a peer on the address it came from,
// out of the socket it reached (a peer-reflexive candidate, which is what
// gets a symmetric NAT through to an easy one), passes acks of our probes
// to the peer's loop, and turns probes from strangers into rate-limited
// peer requests. Probes that are over a limit are dropped before their
// signature is checked; probes that are too old or too new, or played
// back, after.
func (n *Node) handleProbe(b []byte, r route) {
	from := r.addr
	if !n.admitProbe(b, from) {
		return
	}
	n.sigChecks.Add(1)
	pr, err := probe.Parse(b)
	if err != nil {
		n.junk(from, "bad probe", err)
		return
	}
	if pr.To != n.ID() {
		n.junk(from, "probe for another node", nil)
		return
	}
	if !n.timely(pr, from) {
		return
	}
	p := n.peer(NodeID(pr.From))
	switch {
	case p == nil && pr.Type == probe.Request:
		n.strangerProbed(PeerRequest{ID: NodeID(pr.From), Name: pr.Name, Addr: from})
	case p == nil:
		n.junk(from, "ack from a stranger", nil)
	case pr.Type == probe.Request:
		n.peerProbed(p, pr, r)
	case pr.Type == probe.Ack:
		n.peerAcked(p, pr, r)
	}
}

// timely reports whether the probe's time is within probeClockWindow of
// ours. A probe outside is dropped, with a rate-limited warning: it is a
// recording played back, or one of the two clocks is wrong.
func (n *Node) timely(pr probe.Probe, from netip.AddrPort) bool {
	offset := time.Until(pr.Time)
	if offset.Abs() <= probeClockWindow {
		return true
	}
	if n.clockLog.Allow() {
		n.log.Warn("probe refused: the clocks of this computer and the sender's disagree (or the probe was recorded and played back)",
			"from", from, "node", NodeID(pr.From).Short(), "their_clock_ahead_by", offset.Round(time.Second), "allowed", probeClockWindow)
	}
	return false
}

// peerProbed answers a peer's probe request, once per nonce, the way it
// came.
func (n *Node) peerProbed(p *peer, pr probe.Probe, r route) {
	if !p.firstRequest(pr.Nonce, pr.Time) {
		n.junk(r.addr, "replayed probe", nil)
		return
	}
	n.spareHeard(r.local, p.id)
	if rs := n.relay(r.local); rs != nil {
		rs.allow(r.addr.Addr()) // the relay let it through
	}
	if p.addReflexive(r) {
		n.peersChanged()
	}
	n.sendProbe(probe.Ack, p.id, r, pr.Nonce)
	if p.session() != nil {
		offer(p.probed, r)
	}
	offer(p.wake, struct{}{})
}

// peerAcked passes an ack to the peer's loop if it answers a probe we
// sent, recently, to exactly the address it came from, out of the socket
// it came in on; anything else (a recorded ack played back from
// elsewhere) would make us dial an address nobody proved is the peer's.
func (n *Node) peerAcked(p *peer, pr probe.Probe, r route) {
	if !p.takeSent(pr.Nonce, r) {
		n.junk(r.addr, "ack for no probe we sent there", nil)
		return
	}
	n.spareHeard(r.local, p.id)
	offer(p.acks, r)
}

// noteSent remembers a probe request sent on route r, for its ack.
func (p *peer) noteSent(nonce uint64, r route) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Acks are compared with the address they come from, which is unmapped.
	r.addr = netip.AddrPortFrom(r.addr.Addr().Unmap(), r.addr.Port())
	p.sent.put(nonce, sentProbe{to: r, at: time.Now()})
}

// takeSent reports whether nonce is a probe we sent on route from within
// sentProbeTTL, and forgets it: a probe is acknowledged once. The round
// trip is the path's latest.
func (p *peer) takeSent(nonce uint64, from route) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.sent.get(nonce)
	rtt := time.Since(s.at)
	if !ok || s.to != from || rtt > sentProbeTTL {
		return false
	}
	p.sent.remove(nonce)
	p.paths.noteRTT(from, rtt)
	return true
}

// firstRequest reports whether a request nonce is new, and remembers it
// until a probe made at t is too old to be taken anyway.
func (p *peer) firstRequest(nonce uint64, t time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if until, seen := p.seen.get(nonce); seen && time.Now().Before(until) {
		return false
	}
	p.seen.put(nonce, t.Add(probeClockWindow))
	return true
}
