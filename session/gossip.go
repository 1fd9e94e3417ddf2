package session

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/time/rate"
)

// Candidate gossip: a node tells each connected peer its own candidates
// (LocalCandidates: public, LAN and extra ones such as a relay or a
// mapped port) once when a session starts and again at once whenever they
// change, so that a peer that stays connected, or loses the session right
// after, knows where to find it next. The DHT and LAN announcements are
// for peers that were not connected at the time.
//
// On the wire it is one FrameCandidates on a stream of its own, sent and
// not answered: the sender opens a stream, writes the frame and closes it.
// A lost frame costs nothing that the next change or session does not
// repair. The payload is JSON:
//
//	{"candidates":[{"addr":"203.0.113.7:41641","kind":"direct"},{"addr":"192.168.1.20:41641","kind":"lan"}]}
//
// The receiver takes them as Candidates with Source SourceSession, wakes
// the peer's loop (a better path may have appeared) and reports them
// through Events.PeerCandidates, so that its owner can keep them for the
// next start.

// Limits of a candidates frame, checked before anything is decoded.
const (
	// MaxToldCandidates bounds the candidates one frame may carry: what a
	// node keeps per peer (maxLearned). A node with more tells its first
	// ones, in LocalCandidates' order (public, LAN, extras).
	MaxToldCandidates = maxLearned
	// maxCandidatesFrame bounds the payload: 16 candidates of the longest
	// form ({"addr":"[<39 chars>]:65535","kind":"direct"}, 60 bytes) take
	// under 1 KB, so a frame above 4 KiB is not one this build sends.
	maxCandidatesFrame = 4 << 10
)

// CandidatesFrame is the payload of FrameCandidates: the sender's own
// candidates, best first.
type CandidatesFrame struct {
	Candidates []WireCandidate `json:"candidates"`
}

// WireCandidate is one candidate in a CandidatesFrame: an address and
// the kind of path it leads to. Where it was learned is not sent: the
// receiver learned it from the session.
type WireCandidate struct {
	Addr string   `json:"addr"`
	Kind PathKind `json:"kind"`
}

// candidatesFrame is what a node sends of its own candidates: at most
// MaxToldCandidates.
func candidatesFrame(cands []Candidate) CandidatesFrame {
	f := CandidatesFrame{Candidates: make([]WireCandidate, 0, min(len(cands), MaxToldCandidates))}
	for _, c := range cands[:min(len(cands), MaxToldCandidates)] {
		f.Candidates = append(f.Candidates, WireCandidate{Addr: c.Addr.String(), Kind: c.Kind})
	}
	return f
}

// DecodeCandidates parses the payload of a FrameCandidates. It refuses a
// payload over 4 KiB, one that is not the JSON above, and one with more
// than MaxToldCandidates entries; it skips entries whose kind this build
// does not know (a newer peer's) and those that are not an address a
// peer can be reached at (no port, unspecified, loopback, multicast, with
// a zone). The Candidates it returns have Source SourceSession.
func DecodeCandidates(payload []byte) ([]Candidate, error) {
	if len(payload) > maxCandidatesFrame {
		return nil, fmt.Errorf("%w: candidates frame of %d bytes, limit %d", ErrFrameTooLarge, len(payload), maxCandidatesFrame)
	}
	var f CandidatesFrame
	if err := json.Unmarshal(payload, &f); err != nil {
		return nil, fmt.Errorf("%w: candidates: %v", ErrBadFrame, err)
	}
	if len(f.Candidates) > MaxToldCandidates {
		return nil, fmt.Errorf("%w: %d candidates, limit %d", ErrBadFrame, len(f.Candidates), MaxToldCandidates)
	}
	out := make([]Candidate, 0, len(f.Candidates))
	for _, w := range f.Candidates {
		switch w.Kind {
		case PathLAN, PathDirect, PathRelay:
		default:
			continue
		}
		a, err := netip.ParseAddrPort(w.Addr)
		if err != nil || !reachableCandidate(a) {
			continue
		}
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		out = append(out, Candidate{Addr: a, Kind: w.Kind, Source: SourceSession})
	}
	return out, nil
}

// reachableCandidate reports whether a peer could be reached at a: a
// port, and a unicast address that means the same on both hosts (a
// loopback address names the receiver's own host, a zone an interface of
// the sender's).
func reachableCandidate(a netip.AddrPort) bool {
	ip := a.Addr().Unmap()
	return a.Port() != 0 && ip.IsValid() && !ip.IsUnspecified() && !ip.IsLoopback() && !ip.IsMulticast() && ip.Zone() == ""
}

// tellCandidates sends cands to the peer of sess on a stream of its own,
// in the background; a failure only costs the peer this news.
func (n *Node) tellCandidates(sess *Session, cands []Candidate) {
	if len(cands) == 0 {
		return
	}
	frame := candidatesFrame(cands)
	n.goWhileRunning(func() {
		ctx, cancel := context.WithTimeout(sess.conn.Context(), streamTimeout)
		defer cancel()
		stream, err := sess.conn.OpenStreamSync(ctx)
		if err == nil {
			stream.SetDeadline(time.Now().Add(streamTimeout))
			err = WriteFrame(stream, FrameCandidates, frame)
			release(stream)
		}
		if err != nil {
			n.log.Debug("tell candidates", "session", sess, "err", err)
		}
	})
}

// tellAllCandidates sends cands to every peer with a session.
func (n *Node) tellAllCandidates(cands []Candidate) {
	n.mu.Lock()
	peers := make([]*peer, 0, len(n.peers))
	for _, p := range n.peers {
		peers = append(peers, p)
	}
	n.mu.Unlock()
	for _, p := range peers {
		if sess := p.session(); sess != nil {
			n.tellCandidates(sess, cands)
		}
	}
}

// A peer tells its candidates once per session and again on a change of
// its addresses: a few a minute at most. Frames beyond toldRate (after a
// burst of toldBurst) are dropped unread, as each may wake the peer loop
// and cost the owner a database write.
const (
	toldRate  = rate.Limit(1)
	toldBurst = 4
)

func newToldLimiter() *rate.Limiter { return rate.NewLimiter(toldRate, toldBurst) }

// heardCandidates takes the candidates the peer of sess told: they join
// the peer's paths, its loop wakes, and the owner hears of them.
func (n *Node) heardCandidates(sess *Session, payload []byte) {
	if sess.told != nil && !sess.told.Allow() {
		return
	}
	cands, err := DecodeCandidates(payload)
	if err != nil {
		if n.badLog.Allow() {
			n.log.Debug("bad candidates frame", "session", sess, "err", err)
		}
		return
	}
	if !n.accepts(sess) || len(cands) == 0 {
		return
	}
	p := sess.peer
	p.mu.Lock()
	p.paths.learn(time.Now(), cands...)
	p.mu.Unlock()
	offer(p.wake, struct{}{})
	n.log.Debug("peer told its candidates", "session", sess, "candidates", len(cands))
	if n.cfg.Events.PeerCandidates != nil {
		n.cfg.Events.PeerCandidates(sess.Peer, cands)
	}
}

// goWhileRunning runs f in a goroutine that Run waits for, unless the
// node is not running: started under n.mu, it cannot slip in after Close
// (which takes n.mu too) has let Run wait for the node's goroutines.
func (n *Node) goWhileRunning(f func()) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.runCtx != nil && !n.closed {
		n.wg.Go(f)
	}
}
