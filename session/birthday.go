package session

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/punchdrop/punchdrop/nat"
)

// Birthday probing gets a node behind a NAT that maps a new port per
// destination (endpoint-dependent mapping: "hard", "symmetric") through to
// a peer whose NAT keeps one port (endpoint-independent mapping: "easy")
// but filters by address and port, which plain punching cannot do: the
// peer never learns which port the hard NAT picked for it, and its filter
// drops everything from the others.
//
// The hard side opens birthdaySockets extra sockets ("spares") and sends
// a probe from each to the easy side's public address: its NAT opens a
// random port for each, which lets the easy side's address in. The easy
// side sends birthdayProbes probes to random ports of the hard side's
// public address, which opens its own filter to each. Any one of them
// that lands on a port the hard NAT opened gets in, and the answer gets
// back through the hole it made: with 256 of 64 512 ports open, 1024
// probes hit at least one with probability 1 − (1 − 256/64512)^1024 ≈
// 98 %. The session then runs on the spare that was hit; the others
// close.
const (
	// birthdaySockets is how many spares the hard side opens per peer:
	// the figure Tailscale found to work (with birthdayProbes, ≈ 98 %),
	// well under any per-process limit on open files.
	birthdaySockets = 256
	// birthdayProbes is how many random ports the easy side probes in
	// one round.
	birthdayProbes = 1024
	// birthdayRounds bounds the rounds of random probes per punch
	// attempt: each round that meets the hard side's spares succeeds with
	// ≈ 98 %, and a round is 1024 new entries in the easy router's
	// session table.
	birthdayRounds = 3
	// birthdayPace is how long one round's probes are spread over, about
	// 340 a second: a home router's session table (tens of thousands of
	// entries) takes that in its stride, where a burst could trip its
	// flood protection.
	birthdayPace = 3 * time.Second
	// birthdayRoundGap is the pause between rounds of random probes: a
	// peer that started punching later has opened its spares by then.
	birthdayRoundGap = 2 * time.Second
	// birthdayDelay is how long plain punching goes first: every pairing
	// that it can do connects well within a second, and birthday probing
	// is the heavy tool.
	birthdayDelay = time.Second
	// spareResend is how often each spare probes the easy side again
	// while the easy side's rounds may run (birthdaySpan): it gives every
	// round open ports to find, also if the easy side's punch started a
	// little later.
	spareResend = 2 * time.Second
	// birthdaySpan is how long the easy side's rounds take.
	birthdaySpan = birthdayRounds * (birthdayPace + birthdayRoundGap)
	// spareKeepAlive is how often each spare probes after birthdaySpan,
	// until the punch ends: enough to keep its NAT mapping (UDP mappings
	// last 30 s and more) for an easy side whose next punch starts later,
	// at a fifth of the traffic.
	spareKeepAlive = 10 * time.Second
	// maxSpareSockets bounds the spares of all peers together: two peers
	// at a time get their full share, and a node with many peers to punch
	// stays far from its limit on open files.
	maxSpareSockets = 2 * birthdaySockets
	// spareSendGap spaces the spares' probes within one resend, so that
	// 256 new mappings are not a single burst.
	spareSendGap = 2 * time.Millisecond
	// minRandomPort is the lowest port a NAT picks at random (Linux
	// MASQUERADE --random-fully picks from 1024 up).
	minRandomPort = 1024
)

// spareSocket is one of the extra sockets of birthday probing: a socket
// with QUIC and probes on it, as on the node's own, owned by one peer's
// punching.
type spareSocket struct {
	name  Local
	owner NodeID
	conn  net.PacketConn
	tr    *quic.Transport
	ln    *quic.Listener
	stop  context.CancelFunc
	heard atomic.Bool // the peer's probe came in on it: a path opened
}

// sparePrefix starts the name of every spare socket.
const sparePrefix = "spare:"

// isSpare reports whether l names a spare socket.
func (l Local) isSpare() bool {
	return len(l) > len(sparePrefix) && string(l[:len(sparePrefix)]) == sparePrefix
}

// birthdayRole is a node's part in birthday probing with one peer.
type birthdayRole int

const (
	birthdayNone birthdayRole = iota // plain punching will do, or nothing will
	birthdayHard                     // our NAT maps per destination: open spares
	birthdayEasy                     // the peer's does and ours filters: probe random ports
)

// birthdayRole says what the node does to reach p if plain punching does
// not: nothing when both NATs keep their ports (plain punching works) or
// both pick new ones (birthday probing cannot work either), and nothing
// for the easy side whose filter lets the hard side's new port in anyway
// (endpoint-independent or address-dependent filtering).
func (n *Node) birthdayRole(p *peer) birthdayRole {
	r := n.NAT()
	if !r.PublicAddr.IsValid() {
		return birthdayNone
	}
	weHard := r.Mapping == nat.AddressDependent || r.Mapping == nat.AddressAndPortDependent
	switch peerHard := p.isHard(); {
	case weHard && !peerHard && n.canListenSpare():
		return birthdayHard
	case !weHard && peerHard && r.Mapping == nat.EndpointIndependent &&
		r.Filtering != nat.EndpointIndependent && r.Filtering != nat.AddressDependent:
		return birthdayEasy
	}
	return birthdayNone
}

// canListenSpare reports whether the node can open spare sockets: it
// was told how (NodeConfig.ListenSpare), or its socket is a UDP one.
func (n *Node) canListenSpare() bool {
	if n.cfg.ListenSpare != nil {
		return true
	}
	_, ok := n.conn.(*net.UDPConn)
	return ok
}

// listenSpare opens a spare socket like the node's own: on the same
// address, any port.
func (n *Node) listenSpare() (net.PacketConn, error) {
	if n.cfg.ListenSpare != nil {
		return n.cfg.ListenSpare()
	}
	local := n.localAddr()
	if local.Addr().IsUnspecified() {
		// A wildcard socket, dual-stack if the node's is ("udp6" on [::]
		// would be IPv6-only, and birthday probing is for IPv4 NATs).
		return net.ListenUDP("udp", &net.UDPAddr{})
	}
	network := "udp4"
	if local.Addr().Is6() {
		network = "udp6"
	}
	return net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(local.Addr(), 0)))
}

// birthday runs the node's part of birthday probing with p until ctx
// ends (the punch is over), after birthdayDelay of plain punching, unless
// a relay path answered by then: the session will run there, and the
// peer, seeing the same, does not take part either.
func (n *Node) birthday(ctx context.Context, p *peer, role birthdayRole, relayAnswered func() bool) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(birthdayDelay):
	}
	if relayAnswered() {
		n.log.Debug("birthday probing skipped: a relay path answered", "peer", p.id.Short())
		return
	}
	target, ok := birthdayTarget(p.publicCandidates())
	if !ok {
		return
	}
	targets := []netip.AddrPort{target}
	switch role {
	case birthdayHard:
		n.log.Info("birthday probing: opening spare sockets", "peer", p.id.Short(), "sockets", birthdaySockets, "to", targets)
		n.runSpares(ctx, p, targets)
	case birthdayEasy:
		n.log.Info("birthday probing: probing random ports", "peer", p.id.Short(), "probes", birthdayProbes, "rounds", birthdayRounds, "of", targets[0].Addr())
		n.probeRandomPorts(ctx, p, targets[0].Addr())
	}
}

// runSpares opens the spares and has each probe targets every
// spareResend for birthdaySpan, then every spareKeepAlive, until ctx
// ends. Spares whose probes came back stop re-sending: punching probes
// out of them now, like any other socket.
func (n *Node) runSpares(ctx context.Context, p *peer, targets []netip.AddrPort) {
	start := time.Now()
	var spares []*spareSocket
	for i := range birthdaySockets {
		s, err := n.openSpare(p.id, i)
		if err != nil {
			n.log.Warn("birthday probing: spare socket", "opened", i, "err", err)
			break
		}
		spares = append(spares, s)
	}
	for {
		for _, s := range spares {
			if s.heard.Load() {
				continue
			}
			for _, t := range targets {
				n.sendProbes(p, []Path{{Kind: PathDirect, Addr: t, Local: s.name}})
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(spareSendGap):
			}
		}
		gap := spareResend
		if time.Since(start) > birthdaySpan {
			gap = spareKeepAlive
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(gap):
		}
	}
}

// openSpare opens spare i for the peer owner and starts serving it.
func (n *Node) openSpare(owner NodeID, i int) (*spareSocket, error) {
	n.mu.Lock()
	open := len(n.spares)
	n.mu.Unlock()
	if open >= maxSpareSockets {
		return nil, fmt.Errorf("open spare socket: %d are open, the most allowed", open)
	}
	conn, err := n.listenSpare()
	if err != nil {
		return nil, err
	}
	// The full ID: a short one could be ground to collide with another
	// peer's, and one spare would take the other's place unclosed.
	s := &spareSocket{name: Local(sparePrefix + owner.String() + ":" + strconv.Itoa(i)), owner: owner, conn: conn, tr: n.newTransport(conn)}
	if s.ln, err = s.tr.Listen(serverTLS(n.cert, n.isPeer), n.quicConf); err != nil {
		s.tr.Close()
		conn.Close()
		return nil, fmt.Errorf("listen QUIC on a spare socket: %w", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || n.runCtx == nil || len(n.spares) >= maxSpareSockets {
		s.ln.Close()
		s.tr.Close()
		conn.Close()
		if len(n.spares) >= maxSpareSockets {
			return nil, fmt.Errorf("open spare socket: %d are open, the most allowed", len(n.spares))
		}
		return nil, fmt.Errorf("open spare socket: the node is not running")
	}
	ctx, cancel := context.WithCancel(n.runCtx)
	s.stop = cancel
	n.spares[s.name] = s
	n.wg.Go(func() { n.readNonQUIC(ctx, s.tr, s.name) })
	n.wg.Go(func() { n.acceptLoop(ctx, s.ln, s.name) })
	return s, nil
}

// closeSpares closes the spares of owner but keep (LocalUDP: all).
// Sessions on a closed spare end.
func (n *Node) closeSpares(owner NodeID, keep Local) {
	n.mu.Lock()
	var closing []*spareSocket
	for name, s := range n.spares {
		if s.owner == owner && name != keep {
			closing = append(closing, s)
			delete(n.spares, name)
		}
	}
	n.mu.Unlock()
	for _, s := range closing {
		s.close()
	}
	if len(closing) > 0 {
		n.log.Debug("spare sockets closed", "peer", owner.Short(), "closed", len(closing), "kept", keep)
	}
}

func (s *spareSocket) close() {
	if s.stop != nil {
		s.stop()
	}
	s.ln.Close()
	s.tr.Close()
	s.conn.Close()
}

// spare returns the spare socket called name, or nil.
func (n *Node) spare(name Local) *spareSocket {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.spares[name]
}

// spareHeard notes that a fresh probe of the spare's owner (a request
// not played back, or an ack of ours) came in on local, if local is a
// spare: paths out of it are worth probing from now on.
func (n *Node) spareHeard(local Local, from NodeID) {
	if !local.isSpare() {
		return
	}
	if s := n.spare(local); s != nil && s.owner == from && !s.heard.Swap(true) {
		n.log.Info("birthday probing: a spare socket was reached", "peer", from.Short(), "socket", local)
	}
}

// localsFor lists the sockets paths to p may leave from: the node's own
// (locals) and the spares of p's that the peer reached.
func (n *Node) localsFor(p *peer) []Local {
	out := n.locals()
	n.mu.Lock()
	defer n.mu.Unlock()
	var heard []Local
	for name, s := range n.spares {
		if s.owner == p.id && s.heard.Load() {
			heard = append(heard, name)
		}
	}
	slices.Sort(heard)
	return append(out, heard...)
}

// probeRandomPorts sends rounds of birthdayProbes probes to random ports
// of ip, each round's ports distinct, paced over birthdayPace, until ctx
// ends or birthdayRounds are done.
func (n *Node) probeRandomPorts(ctx context.Context, p *peer, ip netip.Addr) {
	gap := birthdayPace / birthdayProbes
	for round := range birthdayRounds {
		if round > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(birthdayRoundGap):
			}
		}
		tick := time.NewTicker(gap)
		for _, port := range randomPorts(birthdayProbes) {
			n.sendProbes(p, []Path{{Kind: PathDirect, Addr: netip.AddrPortFrom(ip, port)}})
			select {
			case <-ctx.Done():
				tick.Stop()
				return
			case <-tick.C:
			}
		}
		tick.Stop()
	}
}

// randomPorts returns count distinct ports from minRandomPort up, in
// random order.
func randomPorts(count int) []uint16 {
	seen := make(map[uint16]bool, count)
	out := make([]uint16, 0, count)
	for len(out) < count {
		port := uint16(minRandomPort + rand.IntN(65536-minRandomPort))
		if !seen[port] {
			seen[port] = true
			out = append(out, port)
		}
	}
	return out
}

// birthdayTarget picks the one address birthday probing aims at: the
// peer's public IPv4 address from its connection string or its DHT
// record, else any public IPv4 one it is known by. One, because every
// address costs the hard side a probe from each of its spare sockets
// every 2 s, and the easy side thousands of probes: a peer naming many
// addresses (any it likes, over a session) must not aim that at them.
func birthdayTarget(cands []Candidate) (netip.AddrPort, bool) {
	var fallback netip.AddrPort
	for _, c := range cands {
		if !c.Addr.Addr().Unmap().Is4() {
			continue
		}
		if c.Source == SourceConnString || c.Source == SourceDHT {
			return c.Addr, true
		}
		if !fallback.IsValid() {
			fallback = c.Addr
		}
	}
	return fallback, fallback.IsValid()
}
