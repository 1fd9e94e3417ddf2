package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"

	"github.com/quic-go/quic-go"
)

// Lanes are extra QUIC connections of a session, on its path, each with
// a congestion controller of its own. On a path with random loss (Wi-Fi,
// mobile links) one connection's loss-based controller keeps its window
// small, and a file striped over several connections moves about as
// many times faster (package transfer, lanes.go). quic-go lets no other
// controller in; extra connections are the lever within reach.
//
// A lane joins a session rather than replacing it: the dialer of a
// session names it with a random token in its Hello (Session), and a
// lane's Hello carries that token (Join). Either side may dial lanes,
// to the address the session runs on: the NATs have that mapping open
// both ways already, and every lane shares the session's socket. A
// node says in its Hello how many lanes it takes per session (Lanes);
// a build without lanes says nothing, and is never dialed a lane (it
// would take the lane for a new session and drop the old one). Lanes
// live as long as their session, and end with it.

// Limits of lanes.
const (
	// MaxLanes bounds the lanes of one session, whoever dialed them:
	// as many as one file's transfer takes (transfer.MaxLanes). Each is
	// a handshake, a keep-alive every keepAlivePeriod and some buffers.
	MaxLanes = 16
	// laneDialers bounds the lane handshakes in flight at once: with
	// the session's own, a burst stays within what the peer's
	// handshake limits take from one address (handshakeSourceBurst).
	laneDialers = 4
)

// laneSet is a session's lanes.
type laneSet struct {
	token string // names the session to lanes; "" when lanes cannot join it
	takes int    // lanes the peer takes per session; 0 for none
	// dial opens a lane to the session's peer, on its path; add makes
	// a connection a lane of the session (Node.addLane).
	dial func(ctx context.Context) (*quic.Conn, error)
	add  func(*quic.Conn) bool
	log  *slog.Logger

	dialing sync.Mutex // one round of dials at a time

	mu     sync.Mutex // guards following
	conns  []*quic.Conn
	closed bool // the session ended: no lane joins any more
}

// laneTerms are what a session's Hello exchange said of lanes.
type laneTerms struct {
	token string // the session's token: the dialer's Hello.Session
	takes int    // the peer's Hello.Lanes
}

// newToken returns a random session token.
func newToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// hello is the Hello this node sends: session names a session it dials,
// join the session a lane joins.
func (n *Node) hello(session, join string) Hello {
	return Hello{Version: ProtocolVersion, Name: n.name(), Lanes: MaxLanes, Session: session, Join: join}
}

// answerHello makes the acceptor's Hello for a connection from peer id:
// a lane's Join is echoed only if the session it names is live, which
// tells the lane's dialer that the lane joined.
func (n *Node) answerHello(id NodeID) func(theirs Hello) Hello {
	return func(theirs Hello) Hello {
		mine := n.hello("", "")
		if theirs.Join != "" && n.laneSession(id, theirs.Join) != nil {
			mine.Join = theirs.Join
		}
		return mine
	}
}

// laneSession returns the live session with id that token names.
func (n *Node) laneSession(id NodeID, token string) *Session {
	n.mu.Lock()
	defer n.mu.Unlock()
	for s := range n.sessions {
		if s.Peer == id && s.lanes.token == token && s.conn.Context().Err() == nil {
			return s
		}
	}
	return nil
}

// newLaneSet makes the lanes of a session with p at the address it runs
// on. A session on a relay has none, whether it leaves through our
// allocation or goes to the peer's: every lane would be another QUIC
// connection through the TURN server, multiplying the load on someone
// else's bandwidth (and its per-allocation quotas) to beat loss on a
// path that is a last resort anyway; a relayed session moves to a
// direct path once one answers, and the lanes come with that session.
func (n *Node) newLaneSet(p *peer, sess *Session, terms laneTerms) *laneSet {
	ls := &laneSet{token: terms.token, takes: min(terms.takes, MaxLanes)}
	if (sess.Path.Kind != PathLAN && sess.Path.Kind != PathDirect) || sess.Path.Local != LocalUDP {
		ls.token, ls.takes = "", 0
	}
	ls.dial = func(ctx context.Context) (*quic.Conn, error) { return n.dialLane(ctx, p, sess) }
	ls.add = func(c *quic.Conn) bool { return n.addLane(sess, c) }
	ls.log = n.log
	return ls
}

// dialLane opens a lane of sess: a QUIC connection to the session's
// address whose Hello joins it.
func (n *Node) dialLane(ctx context.Context, p *peer, sess *Session) (*quic.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	addr := sess.Path.Addr
	conn, err := n.tr.Dial(ctx, net.UDPAddrFromAddrPort(addr), clientTLS(n.cert, p.id), n.quicConf)
	if err != nil {
		return nil, fmt.Errorf("dial a lane to %s at %s: %w", p.id.Short(), addr, err)
	}
	stream, err := conn.OpenStreamSync(ctx)
	var theirs Hello
	if err == nil {
		theirs, err = n.exchangeHello(stream, n.hello("", sess.lanes.token), nil)
	}
	if err == nil && theirs.Join != sess.lanes.token {
		err = errors.New("the peer knows no such session")
	}
	if err != nil {
		conn.CloseWithError(closeRefused, "lane refused")
		return nil, fmt.Errorf("lane to %s at %s: %w", p.id.Short(), addr, err)
	}
	return conn, nil
}

// acceptLane makes conn, a connection from p whose Hello joins the
// session token names, a lane of it.
func (n *Node) acceptLane(conn *quic.Conn, p *peer, token string) {
	sess := n.laneSession(p.id, token)
	if sess == nil || !n.addLane(sess, conn) {
		conn.CloseWithError(closeRefused, "no such session")
	}
}

// addLane adds conn to the session's lanes and serves the streams the
// peer opens on it, until it or the session ends. It refuses the lane
// (false) once the session ended or has MaxLanes.
func (n *Node) addLane(sess *Session, conn *quic.Conn) bool {
	ls := sess.lanes
	ls.mu.Lock()
	if ls.closed || len(ls.conns) >= MaxLanes {
		ls.mu.Unlock()
		return false
	}
	ls.conns = append(ls.conns, conn)
	// The session's stream loop holds handlers above zero until it set
	// closed, so this Add never races with a Wait that saw zero.
	sess.handlers.Add(1)
	ls.mu.Unlock()
	n.wg.Go(func() {
		defer sess.handlers.Done()
		for {
			stream, err := conn.AcceptStream(conn.Context())
			if err != nil {
				break
			}
			sess.handlers.Go(func() { n.serveStream(sess, stream, true) })
		}
		ls.mu.Lock()
		ls.conns = slices.DeleteFunc(ls.conns, func(c *quic.Conn) bool { return c == conn })
		ls.mu.Unlock()
	})
	return true
}

// closeLanes ends a session's lanes once it ended, with the same code
// (a session that moved says so on its lanes too); none joins after.
func (sess *Session) closeLanes() {
	ls := sess.lanes
	ls.mu.Lock()
	ls.closed = true
	conns := slices.Clone(ls.conns)
	ls.mu.Unlock()
	code := closeNormal
	if Moved(context.Cause(sess.conn.Context())) {
		code = closeMoved
	}
	for _, c := range conns {
		c.CloseWithError(code, "session ended")
	}
}

// live returns up to n of the session's lanes that are open.
func (ls *laneSet) live(n int) []*quic.Conn {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	var out []*quic.Conn
	for _, c := range ls.conns {
		if len(out) < n && c.Context().Err() == nil {
			out = append(out, c)
		}
	}
	return out
}

// OpenLanes opens a transfer stream on each of up to n lanes of the
// session, dialing the lanes it lacks first (at most as many as the
// peer takes, MaxLanes in all). It returns the streams it could open
// before ctx ended: none with a peer that takes no lanes, or on a relay.
func (s *Session) OpenLanes(ctx context.Context, n int) []*Stream {
	ls := s.lanes
	n = min(n, ls.takes, MaxLanes)
	if n <= 0 || ls.token == "" {
		return nil
	}
	ls.dialing.Lock()
	missing := n - len(ls.live(n))
	var wg sync.WaitGroup
	sem := make(chan struct{}, laneDialers)
	for range missing {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			conn, err := ls.dial(ctx)
			if err != nil {
				ls.log.Debug("lane not opened", "session", s, "err", err)
				return
			}
			if !ls.add(conn) {
				conn.CloseWithError(closeNormal, "session ended")
			}
		})
	}
	wg.Wait()
	ls.dialing.Unlock()
	var out []*Stream
	for _, c := range ls.live(n) {
		if st, err := openTransferStream(ctx, c, s.Peer); err == nil {
			out = append(out, st)
		}
	}
	return out
}
