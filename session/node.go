package session

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/stun/v3"
	"github.com/quic-go/quic-go"
	"golang.org/x/time/rate"

	"github.com/punchdrop/punchdrop/nat"
	"github.com/punchdrop/punchdrop/session/probe"
)

// Timings of the node's sessions and its view of the network. Each is a
// trade between reacting fast and sending little; the reason for each
// value is next to it. Punching has its own, in punch.go.
const (
	// dialTimeout bounds one QUIC handshake over a path that just
	// answered a probe; such a path has a round trip far below this.
	dialTimeout = 5 * time.Second
	// helloTimeout bounds the first exchange that proves the peer
	// accepted our key.
	helloTimeout = 5 * time.Second
	// idleTimeout closes a QUIC connection that heard nothing for this
	// long, so a dead path (flushed NAT, peer gone) is noticed and
	// re-punched well within 30 s.
	idleTimeout = 15 * time.Second
	// keepAlivePeriod keeps NAT mappings fresh (UDP mappings commonly
	// expire after 30 s or more) and lets idleTimeout trip only on a
	// really dead path.
	keepAlivePeriod = 5 * time.Second
	// maxDatagram is the receive buffer for non-QUIC datagrams; larger
	// ones are truncated and then rejected by the decoders.
	maxDatagram = 2048
)

// ErrUnreachable is returned (wrapped) when punching a peer timed out.
var ErrUnreachable = errors.New("cannot reach peer directly")

// ErrNoPeer is returned when an operation names a node that is not a
// configured peer.
var ErrNoPeer = errors.New("not a configured peer")

// ErrPeerRemoved is returned when the peer that an operation waits for,
// or a session is being made with, is removed meanwhile. It matches
// ErrNoPeer too.
var ErrPeerRemoved error = peerRemoved{}

type peerRemoved struct{}

func (peerRemoved) Error() string        { return "peer removed" }
func (peerRemoved) Is(target error) bool { return target == ErrNoPeer }

// NodeConfig configures a Node. Zero values pick the documented defaults.
type NodeConfig struct {
	Identity Identity
	Name     string // display name sent in probes and the connection string
	// Conn is the node's socket, which carries STUN, probes and QUIC; the
	// node owns it from NewNode on and closes it. ListenUDP opens one.
	Conn        net.PacketConn
	STUNServers []string // "host:port"; empty means nat.DefaultSTUNServers
	// PunchTimeout is how long to probe before declaring a peer
	// unreachable; zero means DefaultPunchTimeout.
	PunchTimeout time.Duration
	Logger       *slog.Logger // nil means slog.Default()
	Events       Events
	// ListenSpare opens another socket like Conn, for birthday probing
	// (birthday.go); nil opens a UDP socket on Conn's address when Conn
	// is a *net.UDPConn, and otherwise turns birthday probing off.
	ListenSpare func() (net.PacketConn, error)
	// Congestion is the congestion control of the node's QUIC
	// connections; "" means CongestionCubic.
	Congestion Congestion

	// For tests.
	lanAddrs func() []netip.AddrPort // the LAN candidates, if not the host's
}

// Events are the callbacks through which a Node tells its owner what
// happened. Nil functions are skipped. They are called from the node's
// goroutines and must not block for long. Once RemovePeer(id) returned,
// no Message or Transfer callback for id runs until id is added again.
type Events struct {
	// Message delivers a text message; an error refuses it and the
	// sender sees the error.
	Message func(from NodeID, text string) error
	// PeerRequest reports probes from a node that is not a peer.
	PeerRequest func(req PeerRequest)
	// PeerState reports a peer's state changes.
	PeerState func(st PeerStatus)
	// Transfer serves a stream a peer opened with OpenTransferStream. It
	// runs on its own goroutine, owns the stream, and must return soon
	// after ctx ends: ctx ends with the session, which ends when the peer
	// is removed or the Node stops. Nil refuses such streams.
	Transfer func(ctx context.Context, sess *Session, stream *Stream)
	// PeerAddr reports the address a session with a peer was made on, so
	// the owner can remember it for the next start.
	PeerAddr func(id NodeID, addr netip.AddrPort)
	// NAT reports a NAT discovery whose result differs from the last:
	// a new public address, or another kind of NAT.
	NAT func(r nat.Report)
	// LocalCandidates reports the node's own candidates (LocalCandidates)
	// whenever they change: a new public address, new LAN addresses, or
	// extra ones an owner set (a relay allocation, a mapped port); and
	// whenever its NAT kind (OwnNAT) changes, with the same candidates.
	LocalCandidates func(cands []Candidate)
	// PeerCandidates reports the candidates a peer told over its session
	// (Source SourceSession), after the node took them, so the owner can
	// keep them for the next start.
	PeerCandidates func(id NodeID, cands []Candidate)
	// PeerNAT reports that a peer told over its session that its NAT
	// maps a new port per destination (hard), or no longer does, unlike
	// what the node knew (PeerInfo.HardNAT, or what it told before), so
	// the owner can keep it for the next start.
	PeerNAT func(id NodeID, hard bool)
}

// PeerRequest is an unknown node knocking.
type PeerRequest struct {
	ID   NodeID
	Name string
	Addr netip.AddrPort
}

// Node is one punchdrop node: its UDP socket, QUIC transport, NAT
// knowledge and the sessions with its peers.
type Node struct {
	cfg      NodeConfig
	log      *slog.Logger
	cert     tls.Certificate
	conn     net.PacketConn
	buffers  SocketBuffers // what the OS granted the socket
	tr       *quic.Transport
	ln       *quic.Listener
	stun     *nat.STUNClient
	quicConf *quic.Config
	wg       sync.WaitGroup // every goroutine Run started; Run waits for them
	badLog   *rate.Limiter  // rate of debug logs about bad datagrams
	clockLog *rate.Limiter  // rate of warnings about probes with a far-off time
	limits   limits         // what strangers can make the node do

	mu           sync.Mutex // guards following
	peers        map[NodeID]*peer
	relays       map[Local]*relaySocket  // relay allocations, by name (relay.go)
	spares       map[Local]*spareSocket  // spare sockets of birthday probing, by name (birthday.go)
	closed       bool                    // Close was called: no goroutine starts any more
	sessions     map[*Session]struct{}   // every live session, a peer's or not yet
	hellos       map[*quic.Conn]struct{} // connections either way, until their Hello exchange is over
	report       nat.Report
	lan          []netip.AddrPort
	extra        map[string][]Candidate  // own candidates set by owners, by provider
	announced    []Candidate             // the own candidates last reported
	announcedNAT NATKind                 // the own NAT kind last reported
	newsSeq      uint64                  // the number of the last news read (newsLocked)
	requested    *lru[NodeID, time.Time] // last PeerRequest event per stranger
	delivered    map[string]struct{}     // recent message IDs, keyed "peer/id"
	runCtx       context.Context         // set by Run; peers added before Run start then

	// Counters, read by tests.
	probesSent        atomic.Int64 // probe requests sent
	sigChecks         atomic.Int64 // probe signatures checked
	retries           atomic.Int64 // handshakes asked to prove their address first
	refusedHandshakes atomic.Int64 // verified sources refused for dialing too often
}

// NewNode prepares QUIC on the node's socket. Call Run to start serving
// and Close when done. On error, cfg.Conn is closed.
func NewNode(cfg NodeConfig) (*Node, error) {
	if cfg.Conn == nil {
		return nil, errors.New("new node: no socket")
	}
	if cfg.PunchTimeout == 0 {
		cfg.PunchTimeout = DefaultPunchTimeout
	}
	if len(cfg.STUNServers) == 0 {
		cfg.STUNServers = nat.DefaultSTUNServers()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	algorithm, emulated, err := quicCongestion(cfg.Congestion)
	if err != nil {
		cfg.Conn.Close()
		return nil, fmt.Errorf("new node: %w", err)
	}
	cert, err := selfSignedCert(cfg.Identity)
	if err != nil {
		cfg.Conn.Close()
		return nil, err
	}
	buffers, err := ReadSocketBuffers(cfg.Conn)
	if err != nil {
		log.Warn("UDP socket buffers", "err", err)
	} else if buffers.Limited {
		log.Warn("UDP socket buffers are small; transfers may be slower", "receive", buffers.Receive, "send", buffers.Send, "fix", buffers.Advice())
	} else {
		log.Debug("UDP socket buffers", "receive", buffers.Receive, "send", buffers.Send)
	}
	n := &Node{
		cfg:     cfg,
		log:     log,
		cert:    cert,
		conn:    cfg.Conn,
		buffers: buffers,
		quicConf: &quic.Config{
			HandshakeIdleTimeout: dialTimeout,
			MaxIdleTimeout:       idleTimeout,
			KeepAlivePeriod:      keepAlivePeriod,
			Congestion:           algorithm,
			CubicConnections:     emulated,
		},
		// One debug line per second about junk is enough to diagnose and
		// too little to fill a disk.
		badLog:    rate.NewLimiter(1, 5),
		clockLog:  rate.NewLimiter(rate.Every(clockLogInterval), 1),
		limits:    newLimits(),
		peers:     map[NodeID]*peer{},
		relays:    map[Local]*relaySocket{},
		spares:    map[Local]*spareSocket{},
		sessions:  map[*Session]struct{}{},
		hellos:    map[*quic.Conn]struct{}{},
		requested: newLRU[NodeID, time.Time](maxStrangers),
		delivered: map[string]struct{}{},
	}
	n.tr = n.newTransport(cfg.Conn)
	n.stun = nat.NewSTUNClient(n.tr)
	ln, err := n.tr.Listen(serverTLS(cert, n.isPeer), n.quicConf)
	if err != nil {
		cfg.Conn.Close()
		return nil, fmt.Errorf("listen QUIC: %w", err)
	}
	n.ln = ln
	// Known from the start, so that a connection string asked for before
	// the first NAT discovery still carries the LAN addresses.
	n.lan = n.listLAN()
	return n, nil
}

// newTransport makes the QUIC transport of one of the node's sockets,
// with the node's limits on incoming handshakes.
func (n *Node) newTransport(conn net.PacketConn) *quic.Transport {
	// A reset key derived from the node key lets a restarted node tell its
	// peers at once that their old connection is gone.
	resetKey := quic.StatelessResetKey(sha256.Sum256(append([]byte("punchdrop stateless reset"), n.cfg.Identity.Key.Seed()...)))
	tr := &quic.Transport{Conn: conn, StatelessResetKey: &resetKey, VerifySourceAddress: n.needRetry, ConnContext: n.admitHandshake}
	// quic-go drops non-QUIC datagrams until ReadNonQUICPacket is first
	// called; calling it now (with a context already done) makes it queue
	// them for the reader that Run starts.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	tr.ReadNonQUICPacket(done, nil)
	return tr
}

// SocketBuffers reports the UDP socket's kernel buffer sizes.
func (n *Node) SocketBuffers() SocketBuffers { return n.buffers }

// ID returns the node's ID.
func (n *Node) ID() NodeID { return n.cfg.Identity.ID }

// Port returns the UDP port the node listens on.
func (n *Node) Port() int { return int(n.localAddr().Port()) }

// localAddr is the socket's own address.
func (n *Node) localAddr() netip.AddrPort { return addrPort(n.conn.LocalAddr()) }

// Close stops the node and closes its socket and sessions. It leaves the
// relay allocations (SetRelay) open for their owners.
func (n *Node) Close() error {
	n.ln.Close()
	n.closeSessions("shutting down")
	n.mu.Lock()
	n.closed = true
	relays := slices.Collect(maps.Values(n.relays))
	clear(n.relays)
	spares := slices.Collect(maps.Values(n.spares))
	clear(n.spares)
	n.mu.Unlock()
	for _, rs := range relays {
		n.closeRelay(rs)
	}
	for _, s := range spares {
		s.close()
	}
	err := n.tr.Close()
	n.conn.Close()
	return err
}

// closeSessions ends every live session with a CONNECTION_CLOSE, so
// peers learn at once that we are gone: closing the transport alone drops
// sessions silently, and a peer would hold a dead one until it times out.
// This includes sessions just made that no peer loop has taken yet, and
// connections whose Hello exchange is not over: the peer counts its
// session from when it reads our Hello, which may be before we register
// ours.
func (n *Node) closeSessions(reason string) {
	n.mu.Lock()
	sessions := slices.Collect(maps.Keys(n.sessions))
	hellos := slices.Collect(maps.Keys(n.hellos))
	n.mu.Unlock()
	for _, conn := range hellos {
		conn.CloseWithError(closeNormal, reason)
	}
	closeAll(sessions, reason)
}

// Run serves until ctx ends: it reads the socket, accepts sessions, keeps
// the NAT report fresh and runs a loop per peer.
func (n *Node) Run(ctx context.Context) error {
	n.mu.Lock()
	n.runCtx = ctx
	for _, p := range n.peers {
		n.startPeerLocked(p)
	}
	for _, rs := range n.relays {
		n.startRelayLocked(rs)
	}
	n.mu.Unlock()
	n.wg.Go(func() { n.readNonQUIC(ctx, n.tr, LocalUDP) })
	n.wg.Go(func() { n.acceptLoop(ctx, n.ln, LocalUDP) })
	n.wg.Go(func() { n.watchNetwork(ctx) })
	<-ctx.Done()
	n.Close()
	n.wg.Wait()
	return nil
}

// readNonQUIC is the one place where the non-QUIC datagrams of one of
// the node's sockets are sorted: punch probes go to handleProbe, STUN
// answers (on the UDP socket) to the STUN client, and anything else is
// counted as junk. QUIC packets never reach it; quic-go takes them.
func (n *Node) readNonQUIC(ctx context.Context, tr *quic.Transport, local Local) {
	buf := make([]byte, maxDatagram)
	for {
		size, from, err := tr.ReadNonQUICPacket(ctx, buf)
		if err != nil {
			if ctx.Err() == nil {
				n.log.Error("read socket", "socket", local, "err", err)
			}
			return
		}
		b := buf[:size]
		switch {
		case probe.Is(b):
			n.handleProbe(b, route{local, addrPort(from)})
		case local == LocalUDP && stun.IsMessage(b):
			if !n.stun.HandleSTUN(b, from) {
				n.junk(addrPort(from), "unexpected STUN message", nil)
			}
		default:
			n.junk(addrPort(from), "unrecognised datagram", nil)
		}
	}
}

// junk logs a datagram we drop, at debug level and rate-limited, so a
// flood of garbage costs neither CPU nor disk.
func (n *Node) junk(from netip.AddrPort, what string, err error) {
	if n.badLog.Allow() {
		n.log.Debug("dropped datagram", "from", from, "what", what, "err", err)
	}
}

// acceptLoop takes the sessions peers dial on one of the node's sockets.
func (n *Node) acceptLoop(ctx context.Context, ln *quic.Listener, local Local) {
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		n.wg.Go(func() { n.handleIncoming(ctx, conn, local) })
	}
}

// isPeer reports whether id is a configured peer; TLS uses it to refuse
// every other key.
func (n *Node) isPeer(id NodeID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, ok := n.peers[id]
	return ok
}

func (n *Node) peer(id NodeID) *peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peers[id]
}

// addrPort converts a socket address to netip form.
func addrPort(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
