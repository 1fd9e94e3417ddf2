package finder

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/punchdrop/punchdrop/dht"
	"github.com/punchdrop/punchdrop/rendezvous"
)

// Timing of puts.
const (
	// publishTimeout bounds one put: a lookup of the closest nodes and a
	// put to each takes 2–10 s on the mainline DHT, and a DHT that has
	// not answered in 30 s will not.
	publishTimeout = 30 * time.Second
	// publishRetryMin is the wait after a failed put; it doubles up to
	// rendezvous.RepublishInterval. A peer looking for us retries within
	// a minute at first (rendezvous.LookupBackoffMin), so a put that
	// failed while the network came up is soon tried again.
	publishRetryMin = 15 * time.Second
)

// PublishStatus describes the last put of the node's record.
type PublishStatus struct {
	// At is when it ended; zero if there was none.
	At time.Time
	// Seq is the record's sequence number, Candidates how many it held.
	Seq        int64
	Candidates int
	// HardNAT is true when it said the node's NAT maps a new port per
	// destination (rendezvous.FlagHardNAT).
	HardNAT bool
	// Stored is how many DHT nodes took it; Queried and Answered count
	// the nodes the put's lookup asked and heard from.
	Stored, Queried, Answered int
	Took                      time.Duration
	// Err says why it failed; empty if it did not.
	Err string
}

// publisher keeps the node's record on the DHT: it puts it when the
// candidates change, at each period's start and every republish interval.
type publisher struct {
	key ed25519.PrivateKey
	log *slog.Logger
	now func() time.Time

	kick chan struct{} // the candidates changed

	mu      sync.Mutex // guards following
	cands   []rendezvous.Candidate
	flags   rendezvous.Flags
	lastSeq int64 // the highest sequence number used or seen for our record
	status  PublishStatus
}

func newPublisher(key ed25519.PrivateKey, log *slog.Logger, now func() time.Time) *publisher {
	return &publisher{key: key, log: log, now: now, kick: make(chan struct{}, 1)}
}

// set replaces the record's candidates and flags and, if they changed,
// asks for a put and reports true.
func (p *publisher) set(cands []rendezvous.Candidate, flags rendezvous.Flags) bool {
	p.mu.Lock()
	changed := !slices.Equal(cands, p.cands) || flags != p.flags
	p.cands, p.flags = cands, flags
	p.mu.Unlock()
	if changed {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
	return changed
}

func (p *publisher) lastStatus() PublishStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status
}

// run keeps the record on d until ctx ends: at once, then as the package
// doc says. d has bootstrapped.
func (p *publisher) run(ctx context.Context, d DHT) {
	retry := publishRetryMin
	wait := time.Duration(0) // put at once: a new DHT node, a new period
	for {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-p.kick:
		case <-timer.C:
		}
		timer.Stop()
		switch err := p.publish(ctx, d); {
		case err == nil || errors.Is(err, errNothingToPublish):
			retry, wait = publishRetryMin, rendezvous.RepublishInterval
		case ctx.Err() != nil:
			return
		default:
			p.log.Warn("could not publish where this node can be reached on the DHT; trying again", "err", err, "in", retry)
			wait, retry = retry, min(2*retry, rendezvous.RepublishInterval)
		}
	}
}

// errNothingToPublish is returned by publish when the node has no
// candidate a record may hold (public or relay).
var errNothingToPublish = errors.New("no public or relay candidate to publish")

// publish seals the current candidates and puts them, sealing again above
// the DHT's sequence number if it holds a higher one.
func (p *publisher) publish(ctx context.Context, d DHT) error {
	p.mu.Lock()
	cands, flags := p.cands, p.flags
	p.mu.Unlock()
	if len(cands) == 0 {
		return errNothingToPublish
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	var stats dht.OpStats
	var seq int64
	var err error
	for range 2 {
		now := p.now()
		p.mu.Lock()
		seq = rendezvous.NextSeq(p.lastSeq, now)
		p.lastSeq = seq
		p.mu.Unlock()
		var it rendezvous.Item
		it, err = rendezvous.Seal(p.key, rendezvous.PeriodOf(now), rendezvous.Record{Seq: seq, Time: now, Candidates: cands, Flags: flags})
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		stats, err = d.Put(ctx, it)
		if !errors.Is(err, dht.ErrSeqNotNewer) {
			break
		}
		p.mu.Lock()
		p.lastSeq = max(p.lastSeq, stats.HighestSeq)
		p.mu.Unlock()
	}
	hard := flags&rendezvous.FlagHardNAT != 0
	st := PublishStatus{At: p.now(), Seq: seq, Candidates: len(cands), HardNAT: hard, Stored: stats.Stored,
		Queried: stats.Queried, Answered: stats.Answered, Took: stats.Took}
	if err != nil {
		st.Err = err.Error()
	} else {
		p.log.Info("published where this node can be reached on the DHT", "candidates", len(cands), "hard_nat", hard, "seq", seq,
			"stored", stats.Stored, "took", stats.Took.Round(time.Millisecond))
	}
	p.mu.Lock()
	p.status = st
	p.mu.Unlock()
	return err
}
