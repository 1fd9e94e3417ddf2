package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// QUIC application error codes sent when a node closes a connection.
const (
	closeNormal  quic.ApplicationErrorCode = 0
	closeRefused quic.ApplicationErrorCode = 1
)

// streamTimeout bounds one request on a stream (a message and its ack).
// A live peer answers in one round trip; no answer in 5 s means the path
// died before QUIC's idle timeout noticed, and the session is re-made.
const streamTimeout = 5 * time.Second

// maxRememberedMessages bounds the message IDs kept to drop duplicates;
// a retry follows its first try within seconds, so recent ones suffice.
const maxRememberedMessages = 1024

// Session is an authenticated QUIC connection to one peer.
type Session struct {
	Conn        *quic.Conn
	Peer        NodeID
	Path        Path
	Addr        netip.AddrPort
	Established time.Time

	// peer is the configuration the session was made for: once that peer
	// is removed (or removed and added again), the session is not its.
	peer *peer
	// handlers counts the loop that accepts the peer's streams and every
	// stream handler it started; RemovePeer waits for them.
	handlers sync.WaitGroup
}

// String describes the session in one log-ready token.
func (s *Session) String() string {
	return fmt.Sprintf("%s via %s %s rtt=%s", s.Peer.Short(), s.Path, s.Addr, s.RTT().Round(time.Microsecond))
}

// RTT is the smoothed round-trip time QUIC measured.
func (s *Session) RTT() time.Duration { return s.Conn.ConnectionStats().SmoothedRTT }

func (s *Session) close(reason string) { s.Conn.CloseWithError(closeNormal, reason) }

// dial opens a QUIC session to p at addr and completes the Hello exchange.
func (n *Node) dial(ctx context.Context, p *peer, addr netip.AddrPort) (*Session, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := n.tr.Dial(ctx, net.UDPAddrFromAddrPort(addr), clientTLS(n.cert, p.info.ID), n.quicConf)
	if err != nil {
		return nil, fmt.Errorf("dial %s at %s: %w", p.info.ID.Short(), addr, err)
	}
	// quic-go reports a refused client key only on the first stream
	// operation, so the session counts only after the Hello exchange.
	stream, err := conn.OpenStreamSync(ctx)
	if err == nil {
		err = n.exchangeHello(stream, true)
	}
	if err != nil {
		conn.CloseWithError(closeRefused, "hello failed")
		return nil, fmt.Errorf("hello %s at %s: %w", p.info.ID.Short(), addr, err)
	}
	return n.startSession(conn, p, addr)
}

// handleIncoming completes the Hello exchange on a connection a peer
// dialed (TLS already checked that its key is a peer's) and hands the
// session to that peer's loop.
func (n *Node) handleIncoming(ctx context.Context, conn *quic.Conn) {
	id, err := peerIDFromCerts(rawPeerCerts(conn))
	p := n.peer(id)
	if err != nil || p == nil {
		conn.CloseWithError(closeRefused, "unknown key")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, helloTimeout)
	defer cancel()
	stream, err := conn.AcceptStream(ctx)
	if err == nil {
		err = n.exchangeHello(stream, false)
	}
	if err != nil {
		n.log.Debug("incoming hello failed", "peer", id.Short(), "err", err)
		conn.CloseWithError(closeRefused, "hello failed")
		return
	}
	addr := addrPort(conn.RemoteAddr())
	sess, err := n.startSession(conn, p, addr)
	if err != nil {
		n.log.Debug("incoming session dropped", "peer", id.Short(), "err", err)
		return
	}
	p.addReflexive(addr)
	select {
	case p.arrived <- sess:
	default:
		// The loop has not taken the previous arrival yet; keep the newest.
		select {
		case old := <-p.arrived:
			old.close("replaced by a newer session")
		default:
		}
		offer(p.arrived, sess)
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
// data is written on it.
func (n *Node) exchangeHello(stream *quic.Stream, dialer bool) error {
	defer release(stream)
	stream.SetDeadline(time.Now().Add(helloTimeout))
	mine := Hello{Version: ProtocolVersion, Name: n.name()}
	var theirs Hello
	if dialer {
		if err := WriteFrame(stream, FrameHello, mine); err != nil {
			return err
		}
		return DecodeFrame(stream, FrameHello, &theirs)
	}
	if err := DecodeFrame(stream, FrameHello, &theirs); err != nil {
		return err
	}
	return WriteFrame(stream, FrameHello, mine)
}

// errPeerRemoved refuses a session made for a peer that was removed
// while it was being made.
var errPeerRemoved = errors.New("peer was removed")

// startSession registers a session that passed the Hello exchange and
// serves the streams the peer opens on it. It refuses the session, closing
// it, unless p is still the configured peer: RemovePeer closes every
// session registered when it removed the peer, so none may be registered
// after that.
func (n *Node) startSession(conn *quic.Conn, p *peer, addr netip.AddrPort) (*Session, error) {
	sess := &Session{Conn: conn, Peer: p.info.ID, Path: p.pathOf(addr), Addr: addr, Established: time.Now(), peer: p}
	n.mu.Lock()
	current := n.peers[p.info.ID] == p
	if current {
		n.sessions[sess] = struct{}{}
		sess.handlers.Add(1) // the stream loop below
	}
	n.mu.Unlock()
	if !current {
		conn.CloseWithError(closeRefused, "peer removed")
		return nil, fmt.Errorf("session with %s: %w", p.info.ID.Short(), errPeerRemoved)
	}
	n.wg.Go(func() {
		n.serveStreams(sess) // until the session ends
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
	return n.peers[sess.Peer] == sess.peer && sess.Conn.Context().Err() == nil
}

// serveStreams answers the requests a peer opens streams for.
func (n *Node) serveStreams(sess *Session) {
	for {
		stream, err := sess.Conn.AcceptStream(sess.Conn.Context())
		if err != nil {
			return
		}
		// The loop's own count keeps sess.handlers above zero here, so
		// this Add never races with a Wait that saw zero.
		sess.handlers.Go(func() { n.serveStream(sess, stream) })
	}
}

func (n *Node) serveStream(sess *Session, stream *quic.Stream) {
	stream.SetDeadline(time.Now().Add(streamTimeout))
	var first [1]byte
	if _, err := io.ReadFull(stream, first[:]); err != nil {
		n.log.Debug("read request", "session", sess, "err", err)
		stream.CancelRead(0)
		stream.Close()
		return
	}
	if first[0] == streamKindTransfer {
		stream.SetDeadline(time.Time{})
		if n.cfg.Events.Transfer == nil || !n.accepts(sess) {
			stream.CancelRead(0)
			stream.CancelWrite(0)
			return
		}
		n.cfg.Events.Transfer(sess.Conn.Context(), sess, stream)
		return
	}
	defer release(stream)
	t, payload, err := ReadFrame(io.MultiReader(bytes.NewReader(first[:]), stream))
	if err != nil {
		n.log.Debug("read request", "session", sess, "err", err)
		stream.CancelRead(0)
		return
	}
	switch t {
	case FrameMsg:
		var m Msg
		if err := json.Unmarshal(payload, &m); err != nil {
			WriteFrame(stream, FrameError, ErrorFrame{Reason: "malformed message"})
			return
		}
		if !n.accepts(sess) {
			WriteFrame(stream, FrameError, ErrorFrame{Reason: "not a peer"})
			return
		}
		if n.cfg.Events.Message != nil && n.firstDelivery(sess.Peer, m.ID) {
			if err := n.cfg.Events.Message(sess.Peer, m.Text); err != nil {
				WriteFrame(stream, FrameError, ErrorFrame{Reason: err.Error()})
				return
			}
		}
		WriteFrame(stream, FrameMsgAck, struct{}{})
	default:
		WriteFrame(stream, FrameError, ErrorFrame{Reason: fmt.Sprintf("unexpected frame type %d", t)})
	}
}

// streamKindTransfer is the first byte of a stream that carries a file;
// control frames start with their type, which is far below it.
const streamKindTransfer = 0x80

// OpenTransferStream opens a stream for a file transfer on the session.
func (s *Session) OpenTransferStream(ctx context.Context) (*quic.Stream, error) {
	stream, err := s.Conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("open transfer stream to %s: %w", s.Peer.Short(), err)
	}
	if _, err := stream.Write([]byte{streamKindTransfer}); err != nil {
		stream.CancelWrite(0)
		return nil, fmt.Errorf("open transfer stream to %s: %w", s.Peer.Short(), err)
	}
	return stream, nil
}

// firstDelivery reports whether message id from peer is new, and
// remembers it. Messages without an ID are always new.
func (n *Node) firstDelivery(peer NodeID, id string) bool {
	if id == "" {
		return true
	}
	key := peer.String() + "/" + id
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, seen := n.delivered[key]; seen {
		return false
	}
	if len(n.delivered) >= maxRememberedMessages {
		clear(n.delivered)
	}
	n.delivered[key] = struct{}{}
	return true
}

// WaitSession returns the peer's session, waking its loop and waiting for
// one until ctx ends.
func (n *Node) WaitSession(ctx context.Context, id NodeID) (*Session, error) {
	p := n.peer(id)
	if p == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoPeer, id.Short())
	}
	offer(p.wake, struct{}{})
	const poll = 50 * time.Millisecond
	for {
		if s := p.session(); s != nil && s.Conn.Context().Err() == nil {
			return s, nil
		}
		if n.peer(id) != p {
			return nil, fmt.Errorf("%w: %s was removed", ErrNoPeer, id.Short())
		}
		select {
		case <-ctx.Done():
			st := p.status()
			if st.Error != "" {
				return nil, fmt.Errorf("%s is %s: %s", id.Short(), st.State, st.Error)
			}
			return nil, fmt.Errorf("%s is %s: %w", id.Short(), st.State, ctx.Err())
		case <-time.After(poll):
		}
	}
}

// SendMessage delivers a text message to a peer and returns once the peer
// stored it. A request that gets no answer means the path died before QUIC
// noticed: the session is dropped, re-punched, and the message sent again
// until ctx ends. Each message carries an ID, so a retry whose first try
// did arrive is not stored twice.
func (n *Node) SendMessage(ctx context.Context, id NodeID, text string) error {
	msg := Msg{ID: fmt.Sprintf("%016x", randomNonce()), Text: text}
	for {
		sess, err := n.WaitSession(ctx, id)
		if err != nil {
			return fmt.Errorf("send message: %w", err)
		}
		err = n.request(ctx, sess, FrameMsg, msg, FrameMsgAck)
		if err == nil || ctx.Err() != nil || errors.Is(err, errRefused) {
			return err
		}
		n.log.Info("request failed; re-connecting", "session", sess, "err", err)
		sess.close("request timed out")
	}
}

// errRefused marks a request the peer answered with a refusal: retrying
// would not help.
var errRefused = errors.New("refused by peer")

// request sends one frame on a new stream and waits for the wanted answer.
func (n *Node) request(ctx context.Context, sess *Session, t FrameType, v any, want FrameType) error {
	stream, err := sess.Conn.OpenStreamSync(ctx)
	if err != nil {
		return fmt.Errorf("request to %s: %w", sess.Peer.Short(), err)
	}
	defer release(stream)
	deadline := time.Now().Add(streamTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	stream.SetDeadline(deadline)
	if err := WriteFrame(stream, t, v); err != nil {
		return fmt.Errorf("request to %s: %w", sess.Peer.Short(), err)
	}
	var peerErr *PeerError
	if err := DecodeFrame(stream, want, &struct{}{}); errors.As(err, &peerErr) {
		return fmt.Errorf("%w: %s", errRefused, peerErr.Reason)
	} else if err != nil {
		return fmt.Errorf("request to %s: %w", sess.Peer.Short(), err)
	}
	return nil
}

// release finishes with a stream in both directions. Closing only the
// write side would leave the stream open until its FIN is read, and such
// streams count against the peer's limit of open streams.
func release(stream *quic.Stream) {
	stream.Close()
	stream.CancelRead(0)
}
