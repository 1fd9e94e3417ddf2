package session

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/punchdrop/punchdrop/safetext"
)

// Control frames on a QUIC stream: a 1-byte type, a 4-byte big-endian
// payload length, then a JSON payload. QUIC already delivers bytes reliably
// and in order; the frame only says where one message ends.
const frameHeaderLen = 5

// MaxControlFrame bounds a control frame's payload. Messages are short texts;
// 64 KiB leaves room for them and refuses a peer trying to exhaust memory.
const MaxControlFrame = 64 << 10

// FrameType says what a frame carries.
type FrameType uint8

// Frame types. Values are on the wire: never renumber.
const (
	FrameHello  FrameType = 1 // first exchange on a new connection
	FrameMsg    FrameType = 2 // a text message
	FrameMsgAck FrameType = 3 // the message was stored
	// 4 was a ping that no version sent; it stays unused.
	FrameError FrameType = 5 // the request failed; payload says why
	// FrameCandidates tells the peer the sender's own candidates; it is
	// not answered (gossip.go).
	FrameCandidates FrameType = 6
	maxFrameType              = FrameCandidates
)

// Errors returned by ReadFrame.
var (
	// ErrFrameTooLarge is returned when a frame's length exceeds the limit.
	ErrFrameTooLarge = errors.New("frame too large")
	// ErrBadFrame is returned for an unknown type or a payload that does
	// not decode.
	ErrBadFrame = errors.New("malformed frame")
)

// Hello is the first frame each side sends on a new connection. Reading the
// other side's Hello is what proves the TLS handshake was accepted.
type Hello struct {
	Version int    `json:"version"`
	Name    string `json:"name,omitempty"`
	// Lanes is how many lanes this node takes per session (lanes.go);
	// zero from a build without lanes.
	Lanes int `json:"lanes,omitempty"`
	// Session, from the dialer of a session, is the token its lanes
	// join it by.
	Session string `json:"session,omitempty"`
	// Join, on a lane, is the token of the session it joins; in the
	// acceptor's answer, it says the lane joined.
	Join string `json:"join,omitempty"`
}

// ProtocolVersion is the Hello version this build speaks.
const ProtocolVersion = 1

// Msg is a text message. ID lets the receiver drop a resent duplicate.
type Msg struct {
	ID   string `json:"id,omitempty"`
	Text string `json:"text"`
}

// ErrorFrame reports why a request was refused.
type ErrorFrame struct {
	Reason string `json:"reason"`
}

// PeerError is returned by DecodeFrame when the peer answered with an
// error frame.
type PeerError struct{ Reason string }

func (e *PeerError) Error() string { return "peer refused: " + e.Reason }

// WriteFrame writes one frame with v encoded as its payload.
func WriteFrame(w io.Writer, t FrameType, v any) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode frame %d: %w", t, err)
	}
	if len(payload) > MaxControlFrame {
		return fmt.Errorf("write frame %d: %w (%d bytes)", t, ErrFrameTooLarge, len(payload))
	}
	buf := make([]byte, frameHeaderLen+len(payload))
	buf[0] = byte(t)
	binary.BigEndian.PutUint32(buf[1:], uint32(len(payload)))
	copy(buf[frameHeaderLen:], payload)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("write frame %d: %w", t, err)
	}
	return nil
}

// ReadFrame reads one frame and returns its type and raw payload. It never
// holds more for a payload than has arrived, nor more than
// MaxControlFrame.
func ReadFrame(r io.Reader) (FrameType, []byte, error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("read frame header: %w", err)
	}
	t := FrameType(hdr[0])
	if t == 0 || t > maxFrameType {
		return 0, nil, fmt.Errorf("%w: unknown type %d", ErrBadFrame, hdr[0])
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxControlFrame {
		return 0, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, MaxControlFrame)
	}
	// Read as the bytes arrive rather than into a buffer of the declared
	// size: a header alone then costs nothing (a peer's streams each
	// declaring 64 KiB and sending nothing held 64 KiB apiece).
	payload, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err == nil && len(payload) < int(n) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return 0, nil, fmt.Errorf("read frame payload: %w", err)
	}
	return t, payload, nil
}

// DecodeFrame reads one frame of the wanted type into v. A FrameError from
// the peer comes back as an error carrying its reason.
func DecodeFrame(r io.Reader, want FrameType, v any) error {
	t, payload, err := ReadFrame(r)
	if err != nil {
		return err
	}
	if t == FrameError && want != FrameError {
		var e ErrorFrame
		if json.Unmarshal(payload, &e) != nil {
			return fmt.Errorf("%w: undecodable error frame", ErrBadFrame)
		}
		return &PeerError{Reason: safetext.Clean(e.Reason)} // the peer's words
	}
	if t != want {
		return fmt.Errorf("%w: got type %d, want %d", ErrBadFrame, t, want)
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("%w: type %d: %v", ErrBadFrame, t, err)
	}
	return nil
}
