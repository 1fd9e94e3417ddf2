package session

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
)

// relayProvider names the node's relay allocations among its own
// candidates (SetExtraCandidates).
const relayProvider = "relay"

// permitRecheckInterval is how often a relay socket compares the
// permissions it holds with the peers' addresses even if nothing told it
// they changed: a permission the server refused is asked for again, and
// what was missed is caught within half a minute.
const permitRecheckInterval = 30 * time.Second

// RelayConn is a relay allocation as the node uses it: a socket on a
// relayed address, which sends from that address and receives what peers
// send to it once Permit let their IP addresses in. Package relay's
// Allocation is one.
type RelayConn interface {
	net.PacketConn
	Permit(addrs ...netip.AddrPort) error
	// Retain keeps the permissions of keep only: the others are no
	// longer renewed, and lapse.
	Retain(keep []netip.Addr)
}

// relaySocket is a relay allocation the node runs QUIC and probes on, as
// on its UDP socket: a quic.Transport of its own (TURN cannot share the
// UDP socket's demux: its ChannelData messages look like QUIC), its own
// reader of probes, and its own listener. A path out of it is a relay
// path.
type relaySocket struct {
	name Local
	conn RelayConn
	addr netip.AddrPort // the relayed address peers send to
	tr   *quic.Transport
	ln   *quic.Listener
	wake chan struct{}      // peers' addresses changed: permit them
	stop context.CancelFunc // ends its loops; nil until they start

	mu        sync.Mutex // guards following
	permitted map[netip.Addr]bool
}

// SetRelay makes conn the node's relay allocation called name (a relay
// URL without its secrets, say), replacing the one it had under that
// name; a nil conn removes it. The node runs QUIC and probes on conn,
// offers its address to peers as a relay candidate, and lets every
// peer's addresses in. Sessions on a replaced or removed allocation end,
// and their peers are punched again. The node never closes conn: its
// owner does, once SetRelay replaced or removed it.
func (n *Node) SetRelay(name string, conn RelayConn) error {
	local := Local(name)
	if local == LocalUDP {
		return errors.New("set relay: no name")
	}
	var rs *relaySocket
	if conn != nil {
		var err error
		if rs, err = n.newRelaySocket(local, conn); err != nil {
			return err
		}
	}
	n.mu.Lock()
	if n.closed { // Close let go of every allocation already
		n.mu.Unlock()
		if rs == nil {
			return nil
		}
		rs.ln.Close()
		rs.tr.Close()
		return errors.New("set relay: the node is closed")
	}
	old := n.relays[local]
	if rs != nil {
		n.relays[local] = rs
		if n.runCtx != nil {
			n.startRelayLocked(rs)
		}
	} else {
		delete(n.relays, local)
	}
	cands := n.relayCandidatesLocked()
	n.mu.Unlock()
	if old != nil {
		n.closeRelay(old)
	}
	if rs != nil {
		n.log.Debug("relay allocation in use", "relay", name, "relayed", rs.addr)
	} else if old != nil {
		n.log.Debug("relay allocation gone", "relay", name, "relayed", old.addr)
	}
	n.SetExtraCandidates(relayProvider, cands)
	n.wakeAll()
	return nil
}

// newRelaySocket prepares QUIC on conn, as NewNode does on the UDP socket.
func (n *Node) newRelaySocket(name Local, conn RelayConn) (*relaySocket, error) {
	rs := &relaySocket{
		name:      name,
		conn:      conn,
		addr:      addrPort(conn.LocalAddr()),
		tr:        n.newTransport(conn),
		wake:      make(chan struct{}, 1),
		permitted: map[netip.Addr]bool{},
	}
	ln, err := rs.tr.Listen(serverTLS(n.cert, n.isPeer), n.quicConf)
	if err != nil {
		return nil, fmt.Errorf("listen QUIC on relay %s: %w", name, err)
	}
	rs.ln = ln
	return rs, nil
}

// startRelayLocked starts reading, accepting and permitting on rs, until
// the node stops or rs is closed. The node must be running and not
// closed: Close, which runs before Run waits for its goroutines, takes
// n.mu too.
func (n *Node) startRelayLocked(rs *relaySocket) {
	ctx, cancel := context.WithCancel(n.runCtx)
	rs.stop = cancel
	n.wg.Go(func() { n.readNonQUIC(ctx, rs.tr, rs.name) })
	n.wg.Go(func() { n.acceptLoop(ctx, rs.ln, rs.name) })
	n.wg.Go(func() { n.permitLoop(ctx, rs) })
}

// closeRelay stops QUIC on rs; the sessions on it end. It leaves rs.conn
// open for its owner.
func (n *Node) closeRelay(rs *relaySocket) {
	if rs.stop != nil {
		rs.stop()
	}
	n.mu.Lock()
	var on []*Session
	for s := range n.sessions {
		if s.Path.Local == rs.name {
			on = append(on, s)
		}
	}
	n.mu.Unlock()
	closeAll(on, "relay allocation gone")
	rs.ln.Close()
	rs.tr.Close()
}

// relayCandidatesLocked lists the relayed addresses of the node's
// allocations, as its own candidates.
func (n *Node) relayCandidatesLocked() []Candidate {
	var out []Candidate
	for _, name := range slices.Sorted(maps.Keys(n.relays)) {
		out = append(out, Candidate{Addr: n.relays[name].addr, Kind: PathRelay})
	}
	return out
}

// locals lists the node's sockets: its UDP socket, then its relay
// allocations by name.
func (n *Node) locals() []Local {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Local{LocalUDP}, slices.Sorted(maps.Keys(n.relays))...)
}

// relay returns the relay allocation called name, or nil.
func (n *Node) relay(name Local) *relaySocket {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.relays[name]
}

// transport returns the QUIC transport of a socket, or nil if it is gone.
func (n *Node) transport(l Local) *quic.Transport {
	if l == LocalUDP {
		return n.tr
	}
	if l.isSpare() {
		if s := n.spare(l); s != nil {
			return s.tr
		}
		return nil
	}
	if rs := n.relay(l); rs != nil {
		return rs.tr
	}
	return nil
}

// writeTo sends a datagram out of socket l. Out of a relay allocation it
// goes only to addresses the allocation let in: the TURN library would
// otherwise ask the server for a permission first, blocking the sender
// for a round trip, or for many seconds if the server is gone.
func (n *Node) writeTo(b []byte, r route) error {
	if r.local == LocalUDP {
		_, err := n.tr.WriteTo(b, net.UDPAddrFromAddrPort(r.addr))
		return err
	}
	if r.local.isSpare() {
		s := n.spare(r.local)
		if s == nil {
			return fmt.Errorf("spare socket %s is closed", r.local)
		}
		_, err := s.tr.WriteTo(b, net.UDPAddrFromAddrPort(r.addr))
		return err
	}
	rs := n.relay(r.local)
	if rs == nil {
		return fmt.Errorf("relay %s is gone", r.local)
	}
	if !rs.isPermitted(r.addr.Addr()) {
		return fmt.Errorf("relay %s has no permission for %s yet", r.local, r.addr.Addr())
	}
	_, err := rs.tr.WriteTo(b, net.UDPAddrFromAddrPort(r.addr))
	return err
}

func (rs *relaySocket) isPermitted(ip netip.Addr) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.permitted[ip.Unmap()]
}

// allow notes that the allocation lets ip in: a permission was granted,
// or a datagram from ip came through.
func (rs *relaySocket) allow(ip netip.Addr) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.permitted[ip.Unmap()] = true
}

// peersChanged tells the relay allocations that peers' addresses changed.
func (n *Node) peersChanged() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.peersChangedLocked()
}

func (n *Node) peersChangedLocked() {
	for _, rs := range n.relays {
		offer(rs.wake, struct{}{})
	}
}

// permitLoop lets every peer's addresses in on rs: at once, whenever they
// change, and every permitRecheckInterval.
func (n *Node) permitLoop(ctx context.Context, rs *relaySocket) {
	tick := time.NewTicker(permitRecheckInterval)
	defer tick.Stop()
	for {
		n.permitPeers(rs)
		select {
		case <-ctx.Done():
			return
		case <-rs.wake:
		case <-tick.C:
		}
	}
}

// permitPeers asks the relay for a permission for each peer address whose
// IP it does not let in yet, one at a time: a server may refuse some (a
// private address), and that must not hold up the others.
func (n *Node) permitPeers(rs *relaySocket) {
	n.mu.Lock()
	peers := slices.Collect(maps.Values(n.peers))
	n.mu.Unlock()
	var want []netip.AddrPort
	for _, p := range peers {
		p.mu.Lock()
		want = append(want, p.paths.remoteAddrs()...)
		p.mu.Unlock()
	}
	// Only the current peers' addresses stay permitted: those of removed
	// peers, and addresses peers no longer name, lapse.
	keep := make([]netip.Addr, 0, len(want))
	for _, a := range want {
		keep = append(keep, a.Addr().Unmap())
	}
	rs.conn.Retain(keep)
	rs.mu.Lock()
	maps.DeleteFunc(rs.permitted, func(ip netip.Addr, _ bool) bool { return !slices.Contains(keep, ip) })
	rs.mu.Unlock()
	for _, a := range want {
		if rs.isPermitted(a.Addr()) {
			continue
		}
		if err := rs.conn.Permit(a); err != nil {
			n.log.Debug("relay permission refused", "relay", rs.name, "addr", a.Addr(), "err", err)
			continue
		}
		rs.allow(a.Addr())
	}
}
