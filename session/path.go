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
	PathRelay  PathKind = "relay"  // through a TURN server: ours, the peer's, or both
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

// Local names which of the node's sockets a path leaves from: LocalUDP
// (empty) is the node's own UDP socket; a name that starts with "spare:"
// is one of the extra sockets of birthday probing (birthday.go), whose
// paths are direct ones; any other is the name of a relay allocation the
// node holds (SetRelay).
type Local string

// LocalUDP is the node's own UDP socket.
const LocalUDP Local = ""

// Path is one way to reach a peer: which of our sockets it leaves from,
// its address there, and what kind of way it is.
type Path struct {
	Kind PathKind
	Addr netip.AddrPort
	// Local is the socket the path leaves from. A path out of a relay
	// allocation is a relay path, whatever address it leads to.
	Local Local
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
// "lan 192.168.1.20:41641 P10 rtt=1.2ms", or for one out of a relay
// allocation "relay 203.0.113.7:41641 P50 from turn:relay.example.com:3478".
func (p Path) String() string {
	s := fmt.Sprintf("%s %s P%d", p.Kind, p.Addr, p.Priority())
	if p.RTT > 0 {
		s += " rtt=" + p.RTT.Round(10*time.Microsecond).String()
	}
	if p.Local != LocalUDP {
		s += " from " + string(p.Local)
	}
	return s
}

// route is the way a datagram takes: out of one of the node's sockets,
// to an address. It is what names a path.
type route struct {
	local Local
	addr  netip.AddrPort
}

func (p Path) route() route { return route{p.Local, p.Addr} }

// maxReflexive bounds the peer-reflexive addresses kept per peer: the
// addresses its probes really came from, on each of our sockets. A
// symmetric NAT shows a new one per destination, but only the latest few
// matter: four on our UDP socket, and as many on relay allocations.
const maxReflexive = 8

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

// candidate is a Candidate and when it was last heard of.
type candidate struct {
	Candidate
	local Local     // for a peer-reflexive one: the socket its probes reached
	seen  time.Time // when it was last learned or confirmed
}

// pathSet is what a node knows of the ways to one peer. Its peer's mu
// guards it.
type pathSet struct {
	learned   []candidate // from its connection string, sessions, the DHT, the LAN; oldest first
	reflexive []candidate // where its probes came from, on which socket; oldest first
	rtt       map[route]time.Duration
}

// learn merges candidates, newest knowledge winning: a known address
// takes the new kind and source and counts as seen now. A peer-reflexive
// address on our UDP socket that is learned becomes a learned one.
func (s *pathSet) learn(now time.Time, cands ...Candidate) {
	for _, c := range cands {
		if !c.Addr.IsValid() {
			continue
		}
		if c.Kind == "" {
			c.Kind = PathDirect
		}
		if old := s.findLearned(c.Addr); old != nil {
			old.Candidate, old.seen = c, now
			continue
		}
		s.reflexive = slices.DeleteFunc(s.reflexive, func(r candidate) bool { return r.local == LocalUDP && r.Addr == c.Addr })
		s.learned = append(s.learned, candidate{Candidate: c, seen: now})
		if len(s.learned) > maxLearned {
			s.forget(s.learned[0].Addr)
			s.learned = s.learned[1:]
		}
	}
}

// addReflexive remembers an address the peer's probes came from, on the
// socket they reached.
func (s *pathSet) addReflexive(r route, now time.Time) {
	if c := s.findLearned(r.addr); c != nil && c.usableFrom(r.local) {
		c.seen = now
		return
	}
	if c := s.findReflexive(r); c != nil {
		c.seen = now
		return
	}
	s.reflexive = append(s.reflexive, candidate{Candidate: Candidate{Addr: r.addr, Kind: PathDirect, Source: SourceProbe}, local: r.local, seen: now})
	if len(s.reflexive) > maxReflexive {
		s.forget(s.reflexive[0].Addr)
		s.reflexive = s.reflexive[1:]
	}
}

// usableFrom reports whether a learned candidate can be reached from one
// of our sockets: a relay on the internet cannot reach the peer's LAN.
func (c candidate) usableFrom(l Local) bool { return l == LocalUDP || c.Kind != PathLAN }

func (s *pathSet) findLearned(a netip.AddrPort) *candidate {
	for i := range s.learned {
		if s.learned[i].Addr == a {
			return &s.learned[i]
		}
	}
	return nil
}

func (s *pathSet) findReflexive(r route) *candidate {
	for i := range s.reflexive {
		if c := &s.reflexive[i]; c.local == r.local && c.Addr == r.addr {
			return c
		}
	}
	return nil
}

// forget drops the round trips measured to a, which is being evicted.
func (s *pathSet) forget(a netip.AddrPort) {
	for r := range s.rtt {
		if r.addr == a {
			delete(s.rtt, r)
		}
	}
}

// noteRTT records a round trip measured on a route to the peer.
func (s *pathSet) noteRTT(r route, rtt time.Duration) {
	if s.findLearned(r.addr) == nil && s.findReflexive(r) == nil {
		return
	}
	if s.rtt == nil {
		s.rtt = map[route]time.Duration{}
	}
	s.rtt[r] = rtt
}

// path describes the path of route r. Out of a relay allocation it is a
// relay path; otherwise it is of its address's kind, and an address the
// set does not know is a direct one.
func (s *pathSet) path(r route) Path {
	p := Path{Kind: PathDirect, Addr: r.addr, Local: r.local, RTT: s.rtt[r]}
	if c := s.findLearned(r.addr); c != nil {
		p.Kind, p.Source = c.Kind, c.Source
	} else if s.findReflexive(r) != nil {
		p.Source = SourceProbe
	}
	if r.local != LocalUDP && !r.local.isSpare() {
		p.Kind = PathRelay
	}
	return p
}

// all lists every candidate path out of the sockets locals, best first
// (then by round trip, then in the order they were learned).
func (s *pathSet) all(locals []Local) []Path {
	out := make([]Path, 0, len(s.learned)*len(locals)+len(s.reflexive))
	seen := map[route]bool{}
	add := func(r route) {
		if !seen[r] {
			seen[r] = true
			out = append(out, s.path(r))
		}
	}
	for _, c := range s.learned {
		for _, l := range locals {
			if c.usableFrom(l) {
				add(route{l, c.Addr})
			}
		}
	}
	for _, c := range s.reflexive {
		if slices.Contains(locals, c.local) {
			add(route{c.local, c.Addr})
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

// betterThan lists the candidate paths out of locals of a better kind
// than current.
func (s *pathSet) betterThan(current Path, locals []Local) []Path {
	return slices.DeleteFunc(s.all(locals), func(p Path) bool { return !p.Better(current) })
}

// remoteAddrs lists the addresses the peer may send from or be reached
// at across the internet: every candidate but LAN ones. A relay
// allocation lets them in (Permit).
func (s *pathSet) remoteAddrs() []netip.AddrPort {
	var out []netip.AddrPort
	for _, list := range [][]candidate{s.learned, s.reflexive} {
		for _, c := range list {
			if c.Kind != PathLAN {
				out = append(out, c.Addr)
			}
		}
	}
	return out
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
