package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/quic-go/quic-go"
)

// streamTimeout bounds one request on a stream (a message and its ack).
// A live peer answers in one round trip; no answer in 5 s means the path
// died before QUIC's idle timeout noticed, and the session is re-made.
const streamTimeout = 5 * time.Second

// maxRememberedMessages bounds the message IDs kept to drop duplicates;
// a retry follows its first try within seconds, so recent ones suffice.
const maxRememberedMessages = 1024

// streamKindTransfer is the first byte of a stream that carries a file;
// control frames start with their type, which is far below it.
const streamKindTransfer = 0x80

// Stream is a stream of a session that carries one file transfer:
// reliable, ordered bytes both ways. It has what transfer.Stream needs.
type Stream struct{ s *quic.Stream }

func (s *Stream) Read(b []byte) (int, error)  { return s.s.Read(b) }
func (s *Stream) Write(b []byte) (int, error) { return s.s.Write(b) }

// Close ends the write side cleanly.
func (s *Stream) Close() error { return s.s.Close() }

// CancelRead and CancelWrite reset one side of the stream at once,
// unblocking any Read or Write.
func (s *Stream) CancelRead(code quic.StreamErrorCode) { s.s.CancelRead(code) }

// CancelWrite: see CancelRead.
func (s *Stream) CancelWrite(code quic.StreamErrorCode) { s.s.CancelWrite(code) }

// SetWriteDeadline bounds blocked Writes.
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.s.SetWriteDeadline(t) }

// OpenTransferStream opens a stream for a file transfer on the session.
func (s *Session) OpenTransferStream(ctx context.Context) (*Stream, error) {
	return openTransferStream(ctx, s.conn, s.Peer)
}

// openTransferStream opens a stream for a file transfer on conn, the
// session's or one of its lanes.
func openTransferStream(ctx context.Context, conn *quic.Conn, peer NodeID) (*Stream, error) {
	stream, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("open transfer stream to %s: %w", peer.Short(), err)
	}
	if _, err := stream.Write([]byte{streamKindTransfer}); err != nil {
		stream.CancelWrite(0)
		return nil, fmt.Errorf("open transfer stream to %s: %w", peer.Short(), err)
	}
	return &Stream{stream}, nil
}

// serveStreams answers the requests a peer opens streams for.
func (n *Node) serveStreams(sess *Session) {
	for {
		stream, err := sess.conn.AcceptStream(sess.conn.Context())
		if err != nil {
			return
		}
		// The loop's own count keeps sess.handlers above zero here, so
		// this Add never races with a Wait that saw zero.
		sess.handlers.Go(func() { n.serveStream(sess, stream, false) })
	}
}

// serveStream serves one stream the peer of sess opened: a transfer, or
// a request frame. A lane (onLane) carries transfers only.
func (n *Node) serveStream(sess *Session, stream *quic.Stream, onLane bool) {
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
		n.cfg.Events.Transfer(sess.conn.Context(), sess, &Stream{stream})
		return
	}
	if onLane {
		stream.CancelRead(0)
		stream.CancelWrite(0)
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
	case FrameCandidates:
		n.heardCandidates(sess, payload)
	default:
		WriteFrame(stream, FrameError, ErrorFrame{Reason: fmt.Sprintf("unexpected frame type %d", t)})
	}
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
	stream, err := sess.conn.OpenStreamSync(ctx)
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
