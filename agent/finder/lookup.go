package finder

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/punchdrop/punchdrop/dht"
	"github.com/punchdrop/punchdrop/rendezvous"
	"github.com/punchdrop/punchdrop/session"
)

// DHT is what publishing and looking up need of a DHT node; *dht.Node has
// it.
type DHT interface {
	Put(ctx context.Context, it rendezvous.Item) (dht.OpStats, error)
	Get(ctx context.Context, target rendezvous.Target, salt []byte) (rendezvous.Item, dht.OpStats, error)
}

// Outcomes of a lookup that found no usable record, beyond the errors of
// rendezvous.Open it wraps (ErrNotNewer for a record not above the one
// held, ErrStale, ErrFromFuture, ErrBadItem...).
var (
	// ErrDHTUnreachable is returned when no DHT node answered: the
	// network blocks the DHT, or the bootstrap nodes are down.
	ErrDHTUnreachable = errors.New("DHT unreachable: no DHT node answered")
	// ErrNoRecord is returned when DHT nodes answered but none holds a
	// record of the peer: it has not published lately, or not to this
	// DHT.
	ErrNoRecord = errors.New("no record of the peer on the DHT")
)

// LookupStats sums up the DHT traffic of one lookup, both periods
// together.
type LookupStats struct {
	Queried, Answered int
	Took              time.Duration
}

// Lookup looks up the record of the peer id in both periods around now
// (rendezvous.LookupPeriods) and returns the one with the highest
// sequence number that opens (rendezvous.Open) and is above held. When
// none does, the error says why: ErrDHTUnreachable, ErrNoRecord, or the
// reason the record found was refused (wrapping rendezvous.ErrNotNewer
// for a replay, or an unchanged peer).
func Lookup(ctx context.Context, d DHT, id session.NodeID, now time.Time, held int64) (rendezvous.Record, LookupStats, error) {
	start := time.Now()
	periods := rendezvous.LookupPeriods(now)
	type result struct {
		rec   rendezvous.Record
		stats dht.OpStats
		err   error
	}
	var results [len(periods)]result
	var wg sync.WaitGroup
	for i, p := range periods {
		wg.Go(func() {
			r := &results[i]
			key, err := rendezvous.BlindPublicKey(ed25519.PublicKey(id[:]), p)
			if err != nil {
				r.err = err
				return
			}
			var it rendezvous.Item
			if it, r.stats, r.err = d.Get(ctx, rendezvous.MutableTarget(key, nil), nil); r.err != nil {
				return
			}
			r.rec, r.err = rendezvous.Open(id[:], p, it, now, held)
		})
	}
	wg.Wait()
	stats := LookupStats{Took: time.Since(start)}
	var best rendezvous.Record
	var refused error
	for _, r := range results {
		stats.Queried += r.stats.Queried
		stats.Answered += r.stats.Answered
		switch {
		case r.err == nil && r.rec.Seq > best.Seq:
			best = r.rec
		case r.err != nil && refused == nil && !errors.Is(r.err, dht.ErrNotFound):
			refused = r.err
		}
	}
	switch {
	case best.Seq > 0:
		return best, stats, nil
	case stats.Answered == 0:
		return best, stats, fmt.Errorf("%w (%d asked)", ErrDHTUnreachable, stats.Queried)
	case refused != nil:
		return best, stats, fmt.Errorf("record refused: %w", refused)
	}
	return best, stats, fmt.Errorf("%w (%d of %d nodes answered)", ErrNoRecord, stats.Answered, stats.Queried)
}
