package transfer

import (
	"fmt"
)

// Eager sending (version 3). A small file goes whole at once: its sender
// writes OFFER, its one CHUNK and END back to back, without waiting for
// the ACCEPT or the ACK, and then reads the receiver's answers (ACCEPT,
// ACK, END_ACK). It costs one round trip instead of three, which is what
// a folder of small files spends its time on over a long path.
//
// The receiver is unchanged in what it admits and when: it reads the
// OFFER, admits it (or refuses it) before it reads anything that follows,
// and only then reads the CHUNK, within the limit the OFFER set, into the
// staging file. Until then the chunk waits in QUIC's receive buffer for
// the stream, which QUIC's flow control bounds as for any stream; a
// refused OFFER's stream is reset unread. A chunk that fails verification
// is NAKed as ever, and the sender writes it again followed by END again:
// a receiver of version 3 reads on after an END that came while a chunk it
// NAKed is missing (awaitsResend).

// MaxEagerSize bounds the files sent eagerly: what a refused offer wastes
// of the path, and what waits unread at the receiver until it admits the
// offer, stays small, well within QUIC's initial stream window (512 KiB),
// so the sender's writes never wait for the receiver. Above it, a file's
// own bytes take about as long as the round trips saved (64 KiB at
// 10 Mbit/s: 50 ms).
const MaxEagerSize = 64 << 10

// eager reports whether the file goes whole at once.
func (s *sender) eager() bool {
	return s.version >= 3 && s.offer.Chunks() <= 1 && s.offer.Size <= MaxEagerSize
}

// runEager sends a small file whole at once, then takes the receiver's
// answers: ACCEPT, then ACK (or a NAK, and the chunk goes again), then
// END_ACK.
func (s *sender) runEager() (string, error) {
	if err := writeFrame(s.stream, s.version, s.offer); err != nil {
		return "", fmt.Errorf("offer %s: %w", s.offer.Name, err)
	}
	r := NewReader(s.stream)
	go s.readFrames(r)
	var chunk *job
	if s.offer.Chunks() == 1 {
		data, hash, err := s.readChunk(0, make([]byte, s.offer.ChunkLen(0)))
		if err != nil {
			return "", err
		}
		s.mu.Lock()
		s.hashes[0], s.hashed = hash, 1
		s.mu.Unlock()
		chunk = &job{index: 0, data: data, hash: hash}
	}
	if err := s.checkUnchanged(); err != nil {
		return "", err
	}
	// A receiver that refuses the offer stops reading, which may fail
	// these writes: its REJECT, read next, says why.
	werr := s.writeWhole(chunk)
	reply, err := s.next()
	if err != nil {
		return "", fmt.Errorf("offer %s: %w", s.offer.Name, versionError(err, r.Version(), s.version))
	}
	if werr != nil {
		return "", fmt.Errorf("send %s: %w", s.offer.Name, werr)
	}
	accept, ok := reply.(Accept)
	if !ok || accept.Have.Len() != s.offer.Chunks() {
		return "", protocolError("answer to OFFER", reply)
	}
	s.accepted(accept.Have)
	for {
		reply, err := s.next()
		if err != nil {
			return "", fmt.Errorf("send %s: %w", s.offer.Name, err)
		}
		switch f := reply.(type) {
		case Ack:
			s.handle(nil, f, nil)
		case Nak:
			if err := s.resendWhole(f); err != nil {
				return "", err
			}
		case EndAck:
			// The receiver holds the whole file; the chunk that came
			// with END gets no ACK of its own.
			s.progress(int64(s.offer.Size), int64(s.offer.Size))
			s.stream.Close()
			return f.Name, nil
		default:
			return "", protocolError("answer to END", reply)
		}
	}
}

// writeWhole writes the file's chunk, if it has one, and END.
func (s *sender) writeWhole(chunk *job) error {
	if chunk != nil {
		if err := writeChunkHead(s.stream, s.version, chunk.index, chunk.hash, len(chunk.data)); err != nil {
			return err
		}
		if _, err := s.stream.Write(chunk.data); err != nil {
			return err
		}
		s.sent.Add(int64(len(chunk.data)))
	}
	return writeFrame(s.stream, s.version, End{Root: root(s.version, s.hashes)})
}

// resendWhole answers a NAK: the chunk goes again, as it was, followed
// by END again, unless it failed verification too often.
func (s *sender) resendWhole(nak Nak) error {
	if err := s.nakked(nak); err != nil {
		return err
	}
	j, err := s.reread(nak.Index)
	if err != nil {
		return err
	}
	if err := s.writeWhole(&j); err != nil {
		return s.explain(fmt.Errorf("send %s again: %w", s.offer.Name, err))
	}
	return nil
}

// awaitsResend reports whether an END that came while chunks are missing
// is to be read past: from version 3 a sender may write END before it has
// our answers, and sends a chunk we NAKed again, followed by END again
// (eager sending). ends is how many ENDs came so far; each NAK allows one
// more, so a sender cannot keep us reading ENDs.
func (in *incoming) awaitsResend(ends int) bool {
	if in.version < 3 {
		return false
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if ends > in.nakAll {
		return false
	}
	for i := range in.naks {
		if !in.have.Has(int(i)) {
			return true
		}
	}
	return false
}
