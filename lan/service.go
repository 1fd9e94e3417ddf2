package lan

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/punchdrop/punchdrop/session"
)

// Timing and bounds of announcing and listening.
const (
	// announceInterval is how often a node announces when nothing
	// changes: a listener that missed an announcement (multicast over
	// Wi-Fi is lossy) or just started hears the next one within seconds.
	// Two 297-byte datagrams per interface every 5 s are 0.1 KB/s.
	announceInterval = 5 * time.Second
	// MaxSkew is how far an announcement's time may be from the
	// listener's clock, either way: the probes' window (two minutes),
	// wide enough for clocks between NTP corrections.
	MaxSkew = 2 * time.Minute
	// sourceRate and sourceBurst cap the announcements taken from one
	// source address: a node sends one per family every announceInterval
	// and one more on each change; a few agents may share a host.
	sourceRate  = 4
	sourceBurst = 8
	// totalRate and totalBurst cap them from all sources: a LAN of 200
	// nodes announcing on two families makes 80 a second. Each costs one
	// Poly1305 check per peer (about a microsecond), so a flood costs at
	// most a millisecond or so a second with ten peers.
	totalRate  = 100
	totalBurst = 200
	// maxSources bounds the sources tracked for sourceRate; past it the
	// table starts afresh (totalRate still holds).
	maxSources = 256
)

// Config configures a Service.
type Config struct {
	// Key is the node key: it signs the node's announcements, and its
	// public half (the node ID) is what peers open them with.
	Key ed25519.PrivateKey
	// Logger receives the Service's logs; nil means slog.Default().
	Logger *slog.Logger
	// Found receives the addresses a peer announced (Kind lan, Source
	// lan) when they differ from those it announced before (the first
	// time it is heard, too). It runs on the Service's goroutine that
	// reads the network: it must not block.
	Found func(id session.NodeID, cands []session.Candidate)

	// For tests.
	link link             // nil: multicast on Port
	now  func() time.Time // nil: time.Now
}

// heard is what the Service last took from one peer.
type heard struct {
	time  time.Time // the announcement's own time
	addrs []netip.AddrPort
}

// Service announces the node on the LAN and hears its peers (see the
// package doc). Its methods may be called from any goroutine.
type Service struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	total   *rate.Limiter
	debug   *rate.Limiter // rate of debug lines about refused datagrams
	changed chan struct{} // the node's own addresses changed

	mu       sync.Mutex // guards following
	own      []netip.AddrPort
	lastSent time.Time // time of the last announcement made
	keys     []PeerKey
	heard    map[session.NodeID]*heard
	sources  map[netip.Addr]*rate.Limiter
}

// New prepares a Service; Run starts it.
func New(cfg Config) (*Service, error) {
	if len(cfg.Key) != ed25519.PrivateKeySize || cfg.Found == nil {
		return nil, errors.New("lan: Config needs Key and Found")
	}
	s := &Service{
		cfg: cfg, log: cfg.Logger, now: cfg.now,
		total:   rate.NewLimiter(totalRate, totalBurst),
		debug:   rate.NewLimiter(1, 5),
		changed: make(chan struct{}, 1),
		heard:   map[session.NodeID]*heard{},
		sources: map[netip.Addr]*rate.Limiter{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// SetPeers replaces the peers whose announcements are taken.
func (s *Service) SetPeers(ids []session.NodeID) {
	keys := make([]PeerKey, 0, len(ids))
	for _, id := range ids {
		k, err := NewPeerKey(id)
		if err != nil {
			s.log.Warn("lan: peer key", "peer", id.Short(), "err", err)
			continue
		}
		keys = append(keys, k)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
	for id := range s.heard {
		if !slices.Contains(ids, id) {
			delete(s.heard, id)
		}
	}
}

// Announce takes the node's own candidates (session.Node.LocalCandidates):
// its LAN ones are announced at once if they changed, and every
// announceInterval.
func (s *Service) Announce(own []session.Candidate) {
	var addrs []netip.AddrPort
	for _, c := range own {
		if c.Kind == session.PathLAN {
			addrs = append(addrs, c.Addr)
		}
	}
	s.mu.Lock()
	changed := !slices.Equal(addrs, s.own)
	s.own = addrs
	s.mu.Unlock()
	if changed {
		select {
		case s.changed <- struct{}{}:
		default:
		}
	}
}

// Run announces and listens until ctx ends. It fails if it cannot listen
// on Port in either family.
func (s *Service) Run(ctx context.Context) error {
	l := s.cfg.link
	if l == nil {
		m, err := listenMulticast(Port, s.log)
		if err != nil {
			return err
		}
		l = m
	}
	defer l.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() { l.run(ctx, s.handle); close(done) }()
	defer func() { cancel(); <-done }()
	tick := time.NewTicker(announceInterval)
	defer tick.Stop()
	failing := false
	for {
		err := s.announce(l)
		switch {
		case err != nil && !failing:
			s.log.Info("cannot announce on the LAN (peers here cannot find this node without the internet)", "err", err)
		case err == nil && failing:
			s.log.Info("announcing on the LAN again")
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return nil
		case <-s.changed:
		case <-tick.C:
			l.refresh()
		}
	}
}

// announce sends one announcement of the node's LAN addresses, if it has
// any.
func (s *Service) announce(l link) error {
	s.mu.Lock()
	addrs := s.own
	t := s.now().Truncate(time.Millisecond)
	if !t.After(s.lastSent) {
		t = s.lastSent.Add(time.Millisecond) // each later than the last
	}
	s.lastSent = t
	s.mu.Unlock()
	if len(addrs) == 0 {
		return nil
	}
	b, err := Seal(s.cfg.Key, Announcement{Time: t, Addrs: addrs})
	if err != nil {
		return err
	}
	return l.send(b)
}

// handle takes one datagram from the LAN: bounded and rate-limited
// before any key is tried, then opened, checked for time and replay, and
// handed on if it says something new.
func (s *Service) handle(b []byte, from netip.AddrPort) {
	if len(b) != AnnouncementSize || !s.allow(from.Addr()) {
		return
	}
	s.mu.Lock()
	keys := s.keys
	s.mu.Unlock()
	id, a, err := Open(b, keys)
	if err != nil {
		if !errors.Is(err, ErrNotPeer) && s.debug.Allow() {
			s.log.Debug("lan: announcement refused", "from", from, "err", err)
		}
		return
	}
	now := s.now()
	if d := a.Time.Sub(now); d > MaxSkew || d < -MaxSkew {
		if s.debug.Allow() {
			s.log.Debug("lan: announcement refused: its time is too far from this clock", "peer", id.Short(), "from", from, "off_by", d.Round(time.Second))
		}
		return
	}
	s.mu.Lock()
	h, ok := s.heard[id]
	if !ok {
		h = &heard{}
		s.heard[id] = h
	}
	if !a.Time.After(h.time) {
		s.mu.Unlock()
		return // a replay, or a copy that came through the other family
	}
	h.time = a.Time
	report := !slices.Equal(a.Addrs, h.addrs)
	h.addrs = a.Addrs
	s.mu.Unlock()
	if !report || len(a.Addrs) == 0 {
		return
	}
	cands := make([]session.Candidate, len(a.Addrs))
	for i, ap := range a.Addrs {
		cands[i] = session.Candidate{Addr: ap, Kind: session.PathLAN, Source: session.SourceLAN}
	}
	s.log.Debug("lan: peer announced", "peer", id.Short(), "addrs", a.Addrs)
	s.cfg.Found(id, cands)
}

// allow reports whether one more datagram from source may be looked at.
func (s *Service) allow(source netip.Addr) bool {
	s.mu.Lock()
	lim, ok := s.sources[source]
	if !ok {
		if len(s.sources) >= maxSources {
			clear(s.sources)
		}
		lim = rate.NewLimiter(sourceRate, sourceBurst)
		s.sources[source] = lim
	}
	s.mu.Unlock()
	return lim.Allow() && s.total.Allow()
}
