package store

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/punchdrop/punchdrop/session"
)

// Limits on what is kept of a peer's addresses beyond its connection
// string.
const (
	// MaxLearned bounds the learned addresses kept per peer: as many as
	// the node tries per peer (session.MaxToldCandidates); a peer that
	// tells more pushes out the ones heard of longest ago.
	MaxLearned = session.MaxToldCandidates
	// LearnedMaxAge is how long a learned address is kept once it is no
	// longer heard of: a laptop back from a month away still tries where
	// its peers were; older ones are forgotten rather than probed for
	// ever.
	LearnedMaxAge = 30 * 24 * time.Hour
)

// LearnedAddr is an address of a peer learned after its connection
// string: told over a session, found on the DHT or on the LAN.
type LearnedAddr struct {
	Addr   netip.AddrPort   `json:"addr"`
	Kind   session.PathKind `json:"kind"`
	Source session.Source   `json:"source"`
	Seen   time.Time        `json:"seen"` // when it was last heard of
}

// Candidate is the address as the node takes it.
func (l LearnedAddr) Candidate() session.Candidate {
	return session.Candidate{Addr: l.Addr, Kind: l.Kind, Source: l.Source}
}

// NoteLearned remembers addresses of peer id heard of at now: each one
// already kept takes the new kind, source and time. The peer keeps at
// most MaxLearned, those heard of most recently, none older than
// LearnedMaxAge; they are kept oldest first. A peer that is not stored
// gives ErrNotFound.
func (s *Store) NoteLearned(id session.NodeID, now time.Time, cands ...session.Candidate) error {
	return s.updatePeer(id, "note learned addresses of", func(p *Peer) {
		p.Learned = mergeLearned(p.Learned, now, cands)
	})
}

// mergeLearned adds cands, heard of at now, to kept.
func mergeLearned(kept []LearnedAddr, now time.Time, cands []session.Candidate) []LearnedAddr {
	out := slices.DeleteFunc(slices.Clone(kept), func(l LearnedAddr) bool {
		return now.Sub(l.Seen) > LearnedMaxAge || slices.ContainsFunc(cands, func(c session.Candidate) bool { return c.Addr == l.Addr })
	})
	for _, c := range cands {
		if !c.Addr.IsValid() || slices.ContainsFunc(out, func(l LearnedAddr) bool { return l.Addr == c.Addr }) {
			continue
		}
		out = append(out, LearnedAddr{Addr: c.Addr, Kind: c.Kind, Source: c.Source, Seen: now.UTC()})
	}
	slices.SortStableFunc(out, func(a, b LearnedAddr) int { return a.Seen.Compare(b.Seen) })
	return out[max(0, len(out)-MaxLearned):]
}

// RaiseRecordSeq remembers seq as the highest sequence number of peer
// id's rendezvous record opened so far, if it is higher than the one
// kept, and reports whether it was. A record whose sequence number is not
// above the kept one is a replay or a rollback, across restarts too.
func (s *Store) RaiseRecordSeq(id session.NodeID, seq int64) (bool, error) {
	raised := false
	err := s.updatePeer(id, "keep the record sequence number of", func(p *Peer) {
		if seq > p.RecordSeq {
			p.RecordSeq, raised = seq, true
		}
	})
	return raised, err
}

// updatePeer changes a stored peer with fn in one transaction; doing
// names the change in an error.
func (s *Store) updatePeer(id session.NodeID, doing string, fn func(*Peer)) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPeers)
		var p Peer
		if err := getJSON(b, peerKey(id), &p); err != nil {
			return err
		}
		fn(&p)
		return putJSON(b, peerKey(id), p)
	})
	if err != nil {
		return fmt.Errorf("%s peer %s: %w", doing, id, err)
	}
	return nil
}
