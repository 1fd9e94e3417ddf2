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
//	{"candidates":[{"addr":"203.0.113.7:41641","kind":"direct"},{"addr":"192.168.1.20:41641","kind":"lan"}],"nat":"hard","seq":7}
//
// The receiver takes them as Candidates with Source SourceSession, wakes
// the peer's loop (a better path may have appeared) and reports them
// through Events.PeerCandidates, so that its owner can keep them for the
// next start.
//
// "nat" is the sender's NAT as far as its peers need to know it (NATKind):
// "hard" when it maps a new public port per destination, so that a peer
// behind an easy NAT knows to try birthday probing (birthday.go) next
// time, "easy" when it does not, and absent when the sender does not know
// (no NAT discovery yet) or is of a build before the field. The receiver
// takes "hard" and "easy" as the peer's state now, whatever its connection
// string said (a node that moved says so), and reports a change through
// Events.PeerNAT; absent, or a kind it does not know, changes nothing.
// A node tells its peers again when its NAT kind changes, as when its
// candidates do.
//
// "seq" orders one node's frames: each new one is higher (a counter of
// the node's). Frames travel on streams of their own and one may overtake
// another, as the frame sent when a session starts may overtake the one
// sent a moment later because the NAT kind changed: the receiver takes the
// NAT kind of a frame only if its seq is above that of every frame of the
// session it took before. A frame without it (an older build's) is taken
// as it comes.

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
// candidates, best first, the kind of its NAT, and the frame's place
// among the sender's.
type CandidatesFrame struct {
	Candidates []WireCandidate `json:"candidates"`
	NAT        NATKind         `json:"nat,omitempty"`
	Seq        uint64          `json:"seq,omitempty"`
}

// Told is what a peer told in a candidates frame.
type Told struct {
	Candidates []Candidate // Source SourceSession
	NAT        NATKind
	// Seq orders the sender's frames (higher is newer); 0 when not said.
	Seq uint64
}

// NATKind is what a node tells its peers of its NAT: whether the port its
// NAT maps it to depends on the destination. Kinds other than these are
// a newer build's; a receiver takes them as NATUnknown.
type NATKind string

// NAT kinds.
const (
	// NATUnknown: the node does not know (no NAT discovery yet, or one
	// that could not tell the mapping), or did not say.
	NATUnknown NATKind = ""
	// NATEasy: peers reach the node at its public address from anywhere
	// their probes open: the NAT keeps one port for every destination,
	// the router forwards a mapped port, or there is no NAT.
	NATEasy NATKind = "easy"
	// NATHard: the NAT maps a new port per destination, as the
	// connection string's nat=hard says.
	NATHard NATKind = "hard"
)

// known reports whether k is a kind this build knows, other than
// NATUnknown.
func (k NATKind) known() bool { return k == NATEasy || k == NATHard }

// WireCandidate is one candidate in a CandidatesFrame: an address and
// the kind of path it leads to. Where it was learned is not sent: the
// receiver learned it from the session.
type WireCandidate struct {
	Addr string   `json:"addr"`
	Kind PathKind `json:"kind"`
}

// news is what a node tells its peers of itself: its candidates and NAT
// kind, numbered (seq) when they were read, under the node's lock.
type news struct {
	cands []Candidate
	nat   NATKind
	seq   uint64
}

// candidatesFrame is what a node sends of its news: at most
// MaxToldCandidates of its candidates, its NAT kind and the news' number.
func candidatesFrame(nw news) CandidatesFrame {
	cands := nw.cands
	f := CandidatesFrame{Candidates: make([]WireCandidate, 0, min(len(cands), MaxToldCandidates)), NAT: nw.nat, Seq: nw.seq}
	for _, c := range cands[:min(len(cands), MaxToldCandidates)] {
		f.Candidates = append(f.Candidates, WireCandidate{Addr: c.Addr.String(), Kind: c.Kind})
	}
	return f
}

// DecodeCandidates parses the payload of a FrameCandidates: the
// candidates, the NAT kind and the number it tells. It refuses a payload
// over 4 KiB, one that is not the JSON above, and one with more than
// MaxToldCandidates entries; it ignores fields it does not know, skips
// entries whose kind this build does not know (a newer peer's) and those
// that are not an address a peer can be reached at (no port, unspecified,
// loopback, multicast, with a zone), and returns NATUnknown for a NAT
// kind it does not know. The Candidates it returns have Source
// SourceSession.
func DecodeCandidates(payload []byte) (Told, error) {
	if len(payload) > maxCandidatesFrame {
		return Told{}, fmt.Errorf("%w: candidates frame of %d bytes, limit %d", ErrFrameTooLarge, len(payload), maxCandidatesFrame)
	}
	var f CandidatesFrame
	if err := json.Unmarshal(payload, &f); err != nil {
		return Told{}, fmt.Errorf("%w: candidates: %v", ErrBadFrame, err)
	}
	if len(f.Candidates) > MaxToldCandidates {
		return Told{}, fmt.Errorf("%w: %d candidates, limit %d", ErrBadFrame, len(f.Candidates), MaxToldCandidates)
	}
	if !f.NAT.known() {
		f.NAT = NATUnknown
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
	return Told{Candidates: out, NAT: f.NAT, Seq: f.Seq}, nil
}

// reachableCandidate reports whether a peer could be reached at a: a
// port, and a unicast address that means the same on both hosts (a
// loopback address names the receiver's own host, a zone an interface of
// the sender's).
func reachableCandidate(a netip.AddrPort) bool {
	ip := a.Addr().Unmap()
	return a.Port() != 0 && ip.IsValid() && !ip.IsUnspecified() && !ip.IsLoopback() && !ip.IsMulticast() && ip.Zone() == ""
}

// tellCandidates sends nw to the peer of sess on a stream of its own, in
// the background; a failure only costs the peer this news.
func (n *Node) tellCandidates(sess *Session, nw news) {
	if len(nw.cands) == 0 && nw.nat == NATUnknown {
		return
	}
	frame := candidatesFrame(nw)
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

// tellAllCandidates sends nw to every peer with a session.
func (n *Node) tellAllCandidates(nw news) {
	n.mu.Lock()
	peers := make([]*peer, 0, len(n.peers))
	for _, p := range n.peers {
		peers = append(peers, p)
	}
	n.mu.Unlock()
	for _, p := range peers {
		if sess := p.session(); sess != nil {
			n.tellCandidates(sess, nw)
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

// heardCandidates takes the candidates and NAT kind the peer of sess
// told: the candidates join the peer's paths, a NAT kind it said replaces
// what the node knew, its loop wakes, and the owner hears of what it
// learned.
func (n *Node) heardCandidates(sess *Session, payload []byte) {
	if sess.told != nil && !sess.told.Allow() {
		return
	}
	told, err := DecodeCandidates(payload)
	if err != nil {
		if n.badLog.Allow() {
			n.log.Debug("bad candidates frame", "session", sess, "err", err)
		}
		return
	}
	if !n.accepts(sess) {
		return
	}
	if told.NAT != NATUnknown {
		n.heardNAT(sess, told.NAT == NATHard, told.Seq)
	}
	cands := told.Candidates
	if len(cands) == 0 {
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

// heardNAT takes what the peer of sess told of its NAT in the frame
// numbered seq, unless the session brought a newer frame already: if
// that changes what the node knew, the peer's next punch plays the part
// birthday probing gives it (birthdayRole), and the owner hears of it.
func (n *Node) heardNAT(sess *Session, hard bool, seq uint64) {
	p := sess.peer
	p.mu.Lock()
	if seq != 0 {
		if p.natToldBy == sess && seq <= p.natToldSeq {
			p.mu.Unlock()
			return // overtaken by a newer frame
		}
		p.natToldBy, p.natToldSeq = sess, seq
	}
	changed := p.hard != hard
	p.hard = hard
	p.mu.Unlock()
	if !changed {
		return
	}
	n.log.Info("peer told its NAT kind", "session", sess, "hard", hard)
	offer(p.wake, struct{}{})
	if n.cfg.Events.PeerNAT != nil {
		n.cfg.Events.PeerNAT(sess.Peer, hard)
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
