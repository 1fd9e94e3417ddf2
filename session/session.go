package session

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/time/rate"
)

// QUIC application error codes sent when a node closes a connection.
const (
	closeNormal  quic.ApplicationErrorCode = 0
	closeRefused quic.ApplicationErrorCode = 1
	// closeMoved ends a session that a newer one replaced: on a better
	// path, or because the peer dialed again. What ran on it may start
	// again at once on the new one.
	closeMoved quic.ApplicationErrorCode = 2
)

// Moved reports whether err ended work on a session that was replaced by
// a newer one (a move to a better path, or a peer that dialed again), on
// either side: the work may be retried at once, with no back-off, on the
// peer's new session.
func Moved(err error) bool {
	var ae *quic.ApplicationError
	return errors.As(err, &ae) && ae.ErrorCode == closeMoved
}

// Session is an authenticated QUIC connection to one peer over one path.
// A peer has one current session; when a better path answers, a new
// session on it replaces the old one.
type Session struct {
	Peer NodeID
	Path Path // as it was when the session was made

	conn *quic.Conn
	// peer is the configuration the session was made for: once that peer
	// is removed (or removed and added again), the session is not its.
	peer *peer
	// handlers counts the loop that accepts the peer's streams and every
	// stream handler it started, and the same of each lane; RemovePeer
	// waits for them.
	handlers sync.WaitGroup
	lanes    *laneSet // extra connections on the same path (lanes.go)
	// told bounds the candidates frames taken from the peer (gossip.go):
	// each may wake the peer loop and reach the store.
	told *rate.Limiter
}

// String describes the session in one log-ready token: the peer, the
// path it is on, and the round trip QUIC measures on it, e.g.
// "KXQ2RM4B via lan 192.168.1.20:41641 P10 rtt=1.2ms".
func (s *Session) String() string {
	path := s.Path
	path.RTT = s.RTT()
	return s.Peer.Short() + " via " + path.String()
}

// RTT is the smoothed round-trip time QUIC measured.
func (s *Session) RTT() time.Duration { return s.conn.ConnectionStats().SmoothedRTT }

func (s *Session) close(reason string) { s.conn.CloseWithError(closeNormal, reason) }

// replaced ends a session a newer one took the place of (see Moved).
func (s *Session) replaced(reason string) { s.conn.CloseWithError(closeMoved, reason) }

// dial opens a QUIC session to p on route r and completes the Hello
// exchange.
func (n *Node) dial(ctx context.Context, p *peer, r route) (*Session, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	addr := r.addr
	tr := n.transport(r.local)
	if tr == nil {
		return nil, fmt.Errorf("dial %s at %s: socket %s is gone", p.id.Short(), addr, r.local)
	}
	conn, err := tr.Dial(ctx, net.UDPAddrFromAddrPort(addr), clientTLS(n.cert, p.id), n.quicConf)
	if err != nil {
		return nil, fmt.Errorf("dial %s at %s: %w", p.id.Short(), addr, err)
	}
	defer n.trackHello(conn)()
	// quic-go reports a refused client key only on the first stream
	// operation, so the session counts only after the Hello exchange.
	stream, err := conn.OpenStreamSync(ctx)
	token := newToken()
	var theirs Hello
	if err == nil {
		theirs, err = n.exchangeHello(stream, n.hello(token, ""), nil)
	}
	if err != nil {
		conn.CloseWithError(closeRefused, "hello failed")
		return nil, fmt.Errorf("hello %s at %s: %w", p.id.Short(), addr, err)
	}
	return n.startSession(conn, p, r, laneTerms{token: token, takes: theirs.Lanes})
}

// handleIncoming completes the Hello exchange on a connection a peer
// dialed to our socket local (TLS already checked that its key is a
// peer's) and hands the session to that peer's loop.
func (n *Node) handleIncoming(ctx context.Context, conn *quic.Conn, local Local) {
	id, err := peerIDFromCerts(rawPeerCerts(conn))
	p := n.peer(id)
	if err != nil || p == nil {
		conn.CloseWithError(closeRefused, "unknown key")
		return
	}
	defer n.trackHello(conn)()
	ctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	stream, err := conn.AcceptStream(ctx)
	var theirs Hello
	if err == nil {
		theirs, err = n.exchangeHello(stream, Hello{}, n.answerHello(id))
	}
	if err != nil {
		n.log.Debug("incoming hello failed", "peer", id.Short(), "err", err)
		conn.CloseWithError(closeRefused, "hello failed")
		return
	}
	if theirs.Join != "" {
		n.acceptLane(conn, p, theirs.Join)
		return
	}
	r := route{local, addrPort(conn.RemoteAddr())}
	if p.addReflexive(r) {
		n.peersChanged()
	}
	sess, err := n.startSession(conn, p, r, laneTerms{token: theirs.Session, takes: theirs.Lanes})
	if err != nil {
		n.log.Debug("incoming session dropped", "peer", id.Short(), "err", err)
		return
	}
	select {
	case p.arrived <- sess:
	default:
		// The loop has not taken the previous arrival yet; keep the newest.
		select {
		case old := <-p.arrived:
			old.replaced("replaced by a newer session")
		default:
		}
		offer(p.arrived, sess)
	}
}

// trackHello keeps conn where closeSessions finds it until the returned
// function is called, when the Hello exchange and the session's
// registration are over.
func (n *Node) trackHello(conn *quic.Conn) (done func()) {
	n.mu.Lock()
	n.hellos[conn] = struct{}{}
	n.mu.Unlock()
	return func() {
		n.mu.Lock()
		delete(n.hellos, conn)
		n.mu.Unlock()
	}
}

func rawPeerCerts(conn *quic.Conn) [][]byte {
	var raw [][]byte
	for _, c := range conn.ConnectionState().TLS.PeerCertificates {
		raw = append(raw, c.Raw)
	}
	return raw
}

// exchangeHello sends our Hello and reads the peer's; the dialer writes
// first, because a QUIC stream becomes visible to the acceptor only once
// data is written on it. The dialer sends mine; the acceptor (answer
// not nil) sends what answer makes of the dialer's.
func (n *Node) exchangeHello(stream *quic.Stream, mine Hello, answer func(theirs Hello) Hello) (Hello, error) {
	defer release(stream)
	stream.SetDeadline(time.Now().Add(helloTimeout))
	var theirs Hello
	if answer == nil {
		if err := WriteFrame(stream, FrameHello, mine); err != nil {
			return theirs, err
		}
		return theirs, DecodeFrame(stream, FrameHello, &theirs)
	}
	if err := DecodeFrame(stream, FrameHello, &theirs); err != nil {
		return theirs, err
	}
	return theirs, WriteFrame(stream, FrameHello, answer(theirs))
}

// startSession registers a session that passed the Hello exchange and
// serves the streams the peer opens on it. It refuses the session, closing
// it, unless p is still the configured peer: RemovePeer closes every
// session registered when it removed the peer, so none may be registered
// after that.
func (n *Node) startSession(conn *quic.Conn, p *peer, r route, lanes laneTerms) (*Session, error) {
	sess := &Session{conn: conn, Peer: p.id, Path: p.pathTo(r), peer: p, told: newToldLimiter()}
	sess.lanes = n.newLaneSet(p, sess, lanes)
	n.mu.Lock()
	current := n.peers[p.id] == p
	if current {
		n.sessions[sess] = struct{}{}
		sess.handlers.Add(1) // the stream loop below
	}
	n.mu.Unlock()
	if !current {
		conn.CloseWithError(closeRefused, "peer removed")
		return nil, fmt.Errorf("session with %s: %w", p.id.Short(), ErrPeerRemoved)
	}
	n.wg.Go(func() {
		n.serveStreams(sess) // until the session ends
		sess.closeLanes()
		sess.handlers.Done()
		sess.handlers.Wait() // the stream handlers it started
		n.mu.Lock()
		delete(n.sessions, sess)
		n.mu.Unlock()
	})
	return sess, nil
}

// accepts reports whether what arrives on sess may still be delivered:
// the session is open and its peer is still the one it was made for.
func (n *Node) accepts(sess *Session) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peers[sess.Peer] == sess.peer && sess.conn.Context().Err() == nil
}
