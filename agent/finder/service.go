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
	"github.com/punchdrop/punchdrop/session"
)

// Config configures a Service.
type Config struct {
	// Key is the node key; it signs the node's records.
	Key ed25519.PrivateKey
	// Bootstrap lists the DHT nodes to join through, as "host:port"; it
	// must not be empty.
	Bootstrap []string
	// Logger receives the Service's logs and its DHT node's; nil means
	// slog.Default().
	Logger *slog.Logger
	// Held returns the highest sequence number of peer id's record the
	// owner keeps, 0 if none; a record must be above it to count.
	Held func(id session.NodeID) int64
	// Found receives what a newer record of peer id holds: its
	// candidates (Source session.SourceDHT), whether it says the peer's
	// NAT maps a new port per destination (rendezvous.FlagHardNAT; false
	// says nothing either way: a record of an older build cannot say
	// it), and its sequence number, which the owner keeps for Held. It
	// runs on the Service's goroutines.
	Found func(id session.NodeID, seq int64, cands []session.Candidate, hardNAT bool)

	// For tests.
	listen      string                  // the DHT socket's address; "" means any
	lookupAfter time.Duration           // 0 means LookupAfter
	backoff     func(int) time.Duration // nil means rendezvous.LookupBackoff
}

// Service runs the node's DHT node, publishes its record and looks up its
// peers (see the package doc). Its methods may be called from any
// goroutine, before Run and after.
type Service struct {
	cfg  Config
	log  *slog.Logger
	pub  *publisher
	seek *seeker

	mu      sync.Mutex // guards following
	node    *dht.Node  // the current DHT node; nil between two
	started time.Time  // when it started
}

// New prepares a Service; Run starts it.
func New(cfg Config) (*Service, error) {
	if len(cfg.Bootstrap) == 0 {
		return nil, errors.New("finder: no DHT bootstrap nodes")
	}
	for _, hp := range cfg.Bootstrap {
		if err := dht.CheckBootstrap(hp); err != nil {
			return nil, fmt.Errorf("finder: %w", err)
		}
	}
	if cfg.Held == nil || cfg.Found == nil || len(cfg.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("finder: Config needs Key, Held and Found")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.lookupAfter == 0 {
		cfg.lookupAfter = LookupAfter
	}
	if cfg.backoff == nil {
		cfg.backoff = rendezvous.LookupBackoff
	}
	s := &Service{cfg: cfg, log: log, pub: newPublisher(cfg.Key, log, time.Now)}
	s.seek = &seeker{
		log: log, now: time.Now, held: cfg.Held, lookupAfter: cfg.lookupAfter, backoff: cfg.backoff,
		found: func(id session.NodeID, rec rendezvous.Record) {
			cfg.Found(id, rec.Seq, sessionCandidates(rec), rec.Flags&rendezvous.FlagHardNAT != 0)
		},
		changed: make(chan struct{}, 1),
		peers:   map[session.NodeID]*seekState{},
	}
	return s, nil
}

// Run runs a DHT node, a new one each period, publishing and looking up
// on it, until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		node, err := dht.New(dht.Config{Listen: s.cfg.listen, Bootstrap: s.cfg.Bootstrap, Logger: s.log, ReadOnly: true})
		if err != nil {
			return fmt.Errorf("finder: %w", err)
		}
		s.mu.Lock()
		s.node, s.started = node, time.Now()
		s.mu.Unlock()
		pctx, cancel := context.WithDeadline(ctx, (rendezvous.PeriodOf(time.Now()) + 1).Start())
		s.runNode(pctx, node)
		cancel()
		s.mu.Lock()
		s.node = nil
		s.mu.Unlock()
		node.Close()
		if ctx.Err() == nil {
			s.log.Info("new day: the DHT node starts again, with a new DHT ID")
		}
	}
	return nil
}

// runNode publishes and looks up on node, once it bootstrapped, until ctx
// ends.
func (s *Service) runNode(ctx context.Context, node *dht.Node) {
	select {
	case <-ctx.Done():
		return
	case <-node.Bootstrapped():
	}
	if err := node.BootstrapErr(); err != nil || node.Stats().LastOp.Answered == 0 {
		s.log.Warn("the DHT is not reachable now; peers that move cannot be found until it is", "err", err, "bootstrap", s.cfg.Bootstrap)
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.pub.run(ctx, node) })
	wg.Go(func() { s.seek.run(ctx, node) })
	wg.Wait()
}

// Publish takes the node's own candidates (session.Node.LocalCandidates)
// and whether its NAT maps a new port per destination (session.NATHard),
// and puts the record at once if what it holds of them changed; peers
// still unreachable are then looked up again soon, as the change may mean
// this node came back online.
func (s *Service) Publish(own []session.Candidate, hardNAT bool) {
	var flags rendezvous.Flags
	if hardNAT {
		flags |= rendezvous.FlagHardNAT
	}
	if s.pub.set(recordCandidates(own), flags) {
		s.seek.again()
	}
}

// Track starts looking after peer id: it is looked up once it has had no
// session for LookupAfter.
func (s *Service) Track(id session.NodeID) { s.seek.track(id) }

// Forget stops looking after peer id.
func (s *Service) Forget(id session.NodeID) { s.seek.forget(id) }

// SetConnected says whether peer id has a session now.
func (s *Service) SetConnected(id session.NodeID, connected bool) {
	s.seek.setConnected(id, connected)
}

// PeerLookup returns peer id's last lookup; its At is zero if there was
// none.
func (s *Service) PeerLookup(id session.NodeID) LookupStatus { return s.seek.status(id) }

// Status describes the Service now, for "punchdrop nat".
type Status struct {
	Bootstrap []string
	// Running is true while a DHT node runs; the fields below are its.
	Running bool
	Started time.Time
	// Bootstrapped is true once its first bootstrap is over;
	// BootstrapErr says why it failed, if it did.
	Bootstrapped bool
	BootstrapErr string
	Node         dht.Stats
	// Publish is the last put of the node's record.
	Publish PublishStatus
}

// Reachable reports whether the DHT answered the node's last operation
// (its bootstrap, a put or a get); false also when none is over yet.
func (st Status) Reachable() bool { return st.Node.LastOp.Answered > 0 }

// Status returns the Service's figures.
func (s *Service) Status() Status {
	st := Status{Bootstrap: slices.Clone(s.cfg.Bootstrap), Publish: s.pub.lastStatus()}
	s.mu.Lock()
	node, started := s.node, s.started
	s.mu.Unlock()
	if node == nil {
		return st
	}
	st.Running, st.Started, st.Node = true, started, node.Stats()
	select {
	case <-node.Bootstrapped():
		st.Bootstrapped = true
		if err := node.BootstrapErr(); err != nil {
			st.BootstrapErr = err.Error()
		}
	default:
	}
	return st
}
