package session

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"
)

// PathKind says how a path reaches a peer.
type PathKind string

// Path kinds.
const (
	PathLAN    PathKind = "lan"    // to one of the peer's host candidates: no NAT in between
	PathDirect PathKind = "direct" // through the NATs, punched
	PathRelay  PathKind = "relay"  // through a TURN server (no relay candidates yet)
)

// Path priorities; lower is better, as with syncthing's dialers. The gaps
// leave room for kinds in between (a mapped port, say).
const (
	// priorityLAN: no NAT to keep open, the shortest round trip, and
	// nothing crosses a metered or slow uplink.
	priorityLAN = 10
	// priorityDirect: through both NATs and the internet, but end to end.
	priorityDirect = 30
	// priorityRelay: an extra hop through someone else's server, with its
	// bandwidth and latency; only when nothing else answers.
	priorityRelay = 50
	// priorityUnknown ranks a kind this build does not know last.
	priorityUnknown = 100
)

// Priority ranks the kind; lower is better.
func (k PathKind) Priority() int {
	switch k {
	case PathLAN:
		return priorityLAN
	case PathDirect:
		return priorityDirect
	case PathRelay:
		return priorityRelay
	}
	return priorityUnknown
}

// Path is one way to reach a peer: its address there and what kind of way
// it is.
type Path struct {
	Kind PathKind
	Addr netip.AddrPort
	// RTT is the last round trip measured on this path, by a probe the
	// peer answered or a session's handshake; zero until one was.
	RTT time.Duration
	// Source is where the address was learned.
	Source Source
}

// Priority ranks the path by its kind; lower is better.
func (p Path) Priority() int { return p.Kind.Priority() }

// Better reports whether p is a better kind of path than q: a session on
// q moves to p once p answers.
func (p Path) Better(q Path) bool { return p.Priority() < q.Priority() }

// String describes the path in one log-ready token, e.g.
// "lan 192.168.1.20:41641 P10 rtt=1.2ms".
func (p Path) String() string {
	s := fmt.Sprintf("%s %s P%d", p.Kind, p.Addr, p.Priority())
	if p.RTT > 0 {
		s += " rtt=" + p.RTT.Round(10*time.Microsecond).String()
	}
	return s
}

// maxReflexive bounds the peer-reflexive addresses kept per peer: the
// addresses its probes really came from. A symmetric NAT shows a new one per
// destination, but only the latest few matter.
const maxReflexive = 4

// maxLearned bounds the addresses kept per peer from everywhere else
// (its connection string, sessions, the DHT, the LAN): a peer has a few
// public addresses, a few LAN ones, a mapped port and a relay; a peer
// that tells us more loses its oldest.
const maxLearned = 16

// Source says where a node learned one of a peer's addresses.
type Source string

// Sources of candidates, as `punchdrop peers --json` shows them
// (found_via).
const (
	SourceConnString Source = "conn_string" // the connection string the peer gave
	SourceSession    Source = "session"     // a session: the peer told us, or ran one there
	SourceDHT        Source = "dht"         // the peer's record on the DHT
	SourceLAN        Source = "lan"         // the peer's announcement on our LAN
	SourceProbe      Source = "probe"       // where the peer's probes came from
)

// Candidate is an address of a peer: the kind of path it leads to, and
// where it was learned. An empty Kind is PathDirect.
type Candidate struct {
	Addr   netip.AddrPort
	Kind   PathKind
	Source Source
}

// candidate is a Candidate and what probing it showed.
type candidate struct {
	Candidate
	rtt  time.Duration // last measured; zero if never
	seen time.Time     // when it was last learned or confirmed
}

// pathSet is what a node knows of the ways to one peer. Its peer's mu
// guards it.
type pathSet struct {
	learned   []candidate // from its connection string, sessions, the DHT, the LAN; oldest first
	reflexive []candidate // where its probes came from, oldest first
}

// learn merges candidates, newest knowledge winning: a known address
// takes the new kind and source and counts as seen now.
func (s *pathSet) learn(now time.Time, cands ...Candidate) {
	for _, c := range cands {
		if !c.Addr.IsValid() {
			continue
		}
		if c.Kind == "" {
			c.Kind = PathDirect
		}
		if old := s.find(c.Addr); old != nil {
			old.Candidate, old.seen = c, now
			continue
		}
		s.learned = append(s.learned, candidate{Candidate: c, seen: now})
		if len(s.learned) > maxLearned {
			s.learned = s.learned[1:]
		}
	}
}

// addReflexive remembers an address the peer's probes came from.
func (s *pathSet) addReflexive(a netip.AddrPort, now time.Time) {
	if c := s.find(a); c != nil {
		c.seen = now
		return
	}
	s.reflexive = append(s.reflexive, candidate{Candidate: Candidate{Addr: a, Kind: PathDirect, Source: SourceProbe}, seen: now})
	if len(s.reflexive) > maxReflexive {
		s.reflexive = s.reflexive[1:]
	}
}

func (s *pathSet) find(a netip.AddrPort) *candidate {
	for _, list := range [][]candidate{s.learned, s.reflexive} {
		for i := range list {
			if list[i].Addr == a {
				return &list[i]
			}
		}
	}
	return nil
}

// noteRTT records a round trip measured on the path to a.
func (s *pathSet) noteRTT(a netip.AddrPort, rtt time.Duration) {
	if c := s.find(a); c != nil {
		c.rtt = rtt
	}
}

// path describes the path to a; an address the set does not know is a
// direct one.
func (s *pathSet) path(a netip.AddrPort) Path {
	if c := s.find(a); c != nil {
		return c.path()
	}
	return Path{Kind: PathDirect, Addr: a}
}

func (c candidate) path() Path {
	return Path{Kind: c.Kind, Addr: c.Addr, RTT: c.rtt, Source: c.Source}
}

// all lists every candidate path, best first (then by round trip, then in
// the order they were learned).
func (s *pathSet) all() []Path {
	out := make([]Path, 0, len(s.learned)+len(s.reflexive))
	for _, list := range [][]candidate{s.learned, s.reflexive} {
		for _, c := range list {
			out = append(out, c.path())
		}
	}
	slices.SortStableFunc(out, func(a, b Path) int {
		return cmp.Or(cmp.Compare(a.Priority(), b.Priority()), cmp.Compare(rttOrder(a.RTT), rttOrder(b.RTT)))
	})
	return out
}

// rttOrder ranks an unmeasured round trip after every measured one.
func rttOrder(rtt time.Duration) time.Duration {
	if rtt == 0 {
		return math.MaxInt64
	}
	return rtt
}

// betterThan lists the candidate paths of a better kind than current.
func (s *pathSet) betterThan(current Path) []Path {
	return slices.DeleteFunc(s.all(), func(p Path) bool { return !p.Better(current) })
}

// knowsIP reports whether ip is the address of one of the candidates.
func (s *pathSet) knowsIP(ip netip.Addr) bool {
	for _, list := range [][]candidate{s.learned, s.reflexive} {
		for _, c := range list {
			if c.Addr.Addr().Unmap() == ip {
				return true
			}
		}
	}
	return false
}
