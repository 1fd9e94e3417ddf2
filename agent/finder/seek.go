package finder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/punchdrop/punchdrop/rendezvous"
	"github.com/punchdrop/punchdrop/session"
)

// Timing of lookups.
const (
	// LookupAfter is how long a peer may be without a session before it
	// is looked up: a peer that restarted, or whose NAT forgot the
	// mapping, answers at its known addresses within a second or two;
	// one that still does not after five has likely moved.
	LookupAfter = 5 * time.Second
	// lookupTimeout bounds one lookup (two DHT gets at once): a get
	// takes 2–10 s on the mainline DHT.
	lookupTimeout = 30 * time.Second
	// maxParallelLookups bounds the lookups running at once: each keeps
	// five queries in flight, and four at once stay well within the DHT
	// node's 50 datagrams a second when many peers are offline.
	maxParallelLookups = 4
)

// Results of a lookup, as LookupStatus.Result says them.
const (
	ResultFound       = "found"       // a newer record; its candidates were handed on
	ResultNotNewer    = "not_newer"   // only the record held, or an older one (a replay)
	ResultNoRecord    = "no_record"   // nodes answered, nobody holds a record
	ResultUnreachable = "unreachable" // no DHT node answered
	ResultRefused     = "refused"     // a record that does not open, or is too old
)

// LookupStatus describes the last lookup of a peer.
type LookupStatus struct {
	At     time.Time // when it ended
	Result string    // one of the Result... constants
	// Detail says the same in words, for a person.
	Detail string
	// Seq is the found record's sequence number, Candidates how many
	// it held.
	Seq        int64
	Candidates int
	Stats      LookupStats
}

// lookupResult names the outcome of Lookup.
func lookupResult(err error) string {
	switch {
	case err == nil:
		return ResultFound
	case errors.Is(err, rendezvous.ErrNotNewer):
		return ResultNotNewer
	case errors.Is(err, ErrNoRecord):
		return ResultNoRecord
	case errors.Is(err, ErrDHTUnreachable):
		return ResultUnreachable
	}
	return ResultRefused
}

// seekState is what the seeker knows of one peer.
type seekState struct {
	connected bool
	since     time.Time // when it was last seen without a session begin
	lookups   int       // lookups since it was last connected
	next      time.Time // when the next lookup is due
	running   bool
	last      LookupStatus
}

// seeker looks up the peers that have no session, as the package doc
// says.
type seeker struct {
	log         *slog.Logger
	now         func() time.Time
	held        func(session.NodeID) int64
	found       func(session.NodeID, rendezvous.Record)
	lookupAfter time.Duration
	backoff     func(lookups int) time.Duration

	changed chan struct{} // a peer was added, or lost its session

	mu    sync.Mutex // guards peers
	peers map[session.NodeID]*seekState
}

// track starts looking after id (a peer just added, or loaded at start).
func (s *seeker) track(id session.NodeID) {
	s.mu.Lock()
	if _, ok := s.peers[id]; !ok {
		s.peers[id] = &seekState{since: s.now()}
	}
	s.mu.Unlock()
	s.wake()
}

// forget stops looking after id (a peer removed).
func (s *seeker) forget(id session.NodeID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.peers, id)
}

// setConnected says whether id has a session now. Connecting resets its
// back-off; losing the session starts the wait for its first lookup.
func (s *seeker) setConnected(id session.NodeID, connected bool) {
	s.mu.Lock()
	st, ok := s.peers[id]
	if !ok || st.connected == connected {
		s.mu.Unlock()
		return
	}
	st.connected = connected
	if !connected {
		st.since, st.lookups, st.next = s.now(), 0, time.Time{}
	}
	s.mu.Unlock()
	s.wake()
}

// again makes every peer without a session due for a lookup soon, as
// after its first: something changed that may have moved them too.
func (s *seeker) again() {
	s.mu.Lock()
	now := s.now()
	for _, st := range s.peers {
		if !st.connected && st.lookups > 0 {
			st.lookups, st.next = 0, now
		}
	}
	s.mu.Unlock()
	s.wake()
}

func (s *seeker) wake() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// status returns id's last lookup; zero if there was none.
func (s *seeker) status(id session.NodeID) LookupStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.peers[id]; ok {
		return st.last
	}
	return LookupStatus{}
}

// dueLocked returns the peers due for a lookup at now, marked running,
// and how long until the next one is due (0: none is).
func (s *seeker) dueLocked(now time.Time) ([]session.NodeID, time.Duration) {
	var due []session.NodeID
	var wait time.Duration
	for id, st := range s.peers {
		if st.connected || st.running {
			continue
		}
		at := st.next
		if st.lookups == 0 && at.IsZero() {
			at = st.since.Add(s.lookupAfter)
		}
		if d := at.Sub(now); d > 0 {
			if wait == 0 || d < wait {
				wait = d
			}
			continue
		}
		st.running = true
		due = append(due, id)
	}
	return due, wait
}

// run looks up the peers that are due on d until ctx ends. d has
// bootstrapped.
func (s *seeker) run(ctx context.Context, d DHT) {
	slots := make(chan struct{}, maxParallelLookups)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		s.mu.Lock()
		due, wait := s.dueLocked(s.now())
		s.mu.Unlock()
		for _, id := range due {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				s.cancelled(due)
				return
			}
			wg.Go(func() {
				defer func() { <-slots }()
				s.lookup(ctx, d, id)
			})
		}
		if !s.sleep(ctx, wait) {
			return
		}
	}
}

// sleep waits for wait (for ever if 0) or a change, and reports whether
// ctx is still alive.
func (s *seeker) sleep(ctx context.Context, wait time.Duration) bool {
	var timer <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-s.changed:
	case <-timer:
	}
	return true
}

// cancelled unmarks peers whose lookup never started.
func (s *seeker) cancelled(ids []session.NodeID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if st, ok := s.peers[id]; ok {
			st.running = false
		}
	}
}

// lookup looks id up once, hands on what it found, and schedules the
// next lookup.
func (s *seeker) lookup(ctx context.Context, d DHT, id session.NodeID) {
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	rec, stats, err := Lookup(lctx, d, id, s.now(), s.held(id))
	cancel()
	if ctx.Err() != nil {
		s.cancelled([]session.NodeID{id})
		return
	}
	st := LookupStatus{At: s.now(), Result: lookupResult(err), Stats: stats, Seq: rec.Seq, Candidates: len(rec.Candidates)}
	if err == nil {
		st.Detail = fmt.Sprintf("found a record of %s with %d address(es)", rec.Time.Local().Format(time.DateTime), len(rec.Candidates))
		if rec.Flags&rendezvous.FlagHardNAT != 0 {
			st.Detail += ", behind a NAT that maps a new port per destination"
		}
		s.log.Info("found a peer's record on the DHT", "peer", id.Short(), "seq", rec.Seq, "candidates", len(rec.Candidates),
			"hard_nat", rec.Flags&rendezvous.FlagHardNAT != 0, "took", stats.Took.Round(time.Millisecond))
	} else {
		st.Detail = err.Error()
		s.log.Debug("peer lookup on the DHT", "peer", id.Short(), "result", st.Result, "err", err, "took", stats.Took.Round(time.Millisecond))
	}
	// The status is kept before the record is handed on: what it brings
	// (a session, within a second) must not be seen before the lookup
	// that found it (the store's fsync can take that long).
	s.mu.Lock()
	ps, ok := s.peers[id]
	if ok {
		ps.running, ps.last = false, st
		ps.lookups++
		wait := s.backoff(ps.lookups)
		ps.next = st.At.Add(wait + rand.N(wait/10+1))
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	if err == nil {
		s.found(id, rec)
	}
	s.wake() // the loop schedules the next one
}
