package session

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/time/rate"
)

// Limits on what strangers can make a node do. A probe costs a signature
// check (~50 µs), a peer request a durable write, a log line and a desktop
// notification, a QUIC handshake ~1.5 ms of CPU. Each limit says why its
// value leaves real peers and strangers untouched.
const (
	// strangerProbeRate caps the stranger probes whose signature is
	// checked, from all sources together: real requests are rare, and 50
	// a second caps what a flood costs at a few ms of CPU a second.
	strangerProbeRate  = 50
	strangerProbeBurst = 50
	// strangerSourceRate caps them per source IP: a stranger who pasted
	// our string probes 5 times a second from one address, and a few of
	// those probes are all a request needs.
	strangerSourceRate  = 2
	strangerSourceBurst = 10
	// peerSourceRate caps probes that claim to come from a configured
	// peer, per source IP. A peer probes each of our addresses 5 times a
	// second and acks ours as often; 20 a second covers four paths from
	// one IP, and the burst a round sent to all our candidates at once.
	peerSourceRate  = 20
	peerSourceBurst = 40
	// claimedRate caps, from all sources together, probes that claim a
	// peer's ID but come from an address we do not know for that peer
	// (its public ID is no secret). A peer that moved is heard within a
	// round or two; a flood of forged probes costs at most this many
	// checks a second.
	claimedRate  = 100
	claimedBurst = 100
	// newKeyInterval and newKeyBurst cap the new stranger keys that
	// become peer requests, per source IP: three a minute. A person
	// sends one request; a flood mints a key per probe.
	newKeyInterval = 20 * time.Second
	newKeyBurst    = 3
	// requestInterval and requestBurst cap peer request events from all
	// strangers together (30 a minute): each is a durable write, a log
	// line and a notification, and a pending stranger repeats its
	// request every strangerRequestInterval.
	requestInterval = 2 * time.Second
	requestBurst    = 10
	// handshakeRate is the rate of incoming QUIC handshakes above which
	// a client must first prove its address with a Retry (one more round
	// trip): peers dial a few times a minute each, and spoofed sources
	// never answer a Retry.
	handshakeRate  = 10
	handshakeBurst = 20
	// handshakeSourceRate caps handshakes per verified source IP: one
	// peer dials again at most every redialInterval, and a few peers may
	// share one public IP. The burst takes a session and all its lanes
	// (MaxLanes) at once, with room for a redial.
	handshakeSourceRate  = 2
	handshakeSourceBurst = 4 + MaxLanes
	// maxTrackedSources bounds every per-source table: more sources than
	// a node sees from real peers and strangers at once. Past it the
	// source unused longest is forgotten (and starts afresh if it comes
	// back, which the limits on all sources together still cap).
	maxTrackedSources = 1024
)

// errTooManyHandshakes refuses a verified source that dials too often.
var errTooManyHandshakes = errors.New("too many handshakes from this address")

// limits are the rate limits a node applies to what arrives unasked.
type limits struct {
	strangers        *rate.Limiter // stranger probes checked, all sources
	strangerSources  *addrLimiter  // stranger probes checked, per source
	peerSources      *addrLimiter  // probes claiming a peer, per source
	claimed          *rate.Limiter // probes claiming a peer from an address not its
	newKeys          *addrLimiter  // new stranger keys that become requests, per source
	requests         *rate.Limiter // peer request events, all strangers
	handshakes       *rate.Limiter // handshakes taken without a Retry
	handshakeSources *addrLimiter  // handshakes per verified source
}

func newLimits() limits {
	return limits{
		strangers:        rate.NewLimiter(strangerProbeRate, strangerProbeBurst),
		strangerSources:  newAddrLimiter(strangerSourceRate, strangerSourceBurst),
		peerSources:      newAddrLimiter(peerSourceRate, peerSourceBurst),
		claimed:          rate.NewLimiter(claimedRate, claimedBurst),
		newKeys:          newAddrLimiter(rate.Every(newKeyInterval), newKeyBurst),
		requests:         rate.NewLimiter(rate.Every(requestInterval), requestBurst),
		handshakes:       rate.NewLimiter(handshakeRate, handshakeBurst),
		handshakeSources: newAddrLimiter(handshakeSourceRate, handshakeSourceBurst),
	}
}

// addrLimiter is a rate limit per source, for at most maxTrackedSources
// sources. It is safe for concurrent use.
type addrLimiter struct {
	limit rate.Limit
	burst int

	mu   sync.Mutex // guards following
	lims *lru[netip.Addr, *rate.Limiter]
}

func newAddrLimiter(limit rate.Limit, burst int) *addrLimiter {
	return &addrLimiter{limit: limit, burst: burst, lims: newLRU[netip.Addr, *rate.Limiter](maxTrackedSources)}
}

// allow reports whether one more event from a may happen now.
func (l *addrLimiter) allow(a netip.Addr) bool {
	key := sourceKey(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.lims.get(key)
	if !ok {
		lim = rate.NewLimiter(l.limit, l.burst)
		l.lims.put(key, lim)
	}
	return lim.Allow()
}

// sourceKey is what a source is limited by: its IPv4 address, or the /64
// of an IPv6 address (one host commonly holds a whole /64).
func sourceKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// needRetry is the transport's VerifySourceAddress: once incoming
// handshakes come faster than handshakeRate, clients must prove their
// address with a Retry before the node spends a handshake on them.
func (n *Node) needRetry(net.Addr) bool {
	retry := !n.limits.handshakes.Allow()
	if retry {
		n.retries.Add(1)
	}
	return retry
}

// admitHandshake is the transport's ConnContext: it refuses a client whose
// address was verified (so not spoofed) once that address dials faster
// than handshakeSourceRate.
func (n *Node) admitHandshake(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	if info.AddrVerified && !n.limits.handshakeSources.allow(addrPort(info.RemoteAddr).Addr()) {
		n.refusedHandshakes.Add(1)
		return ctx, errTooManyHandshakes
	}
	return ctx, nil
}
