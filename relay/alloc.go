package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/pion/stun/v3"
	"github.com/pion/turn/v4"
)

// Timings of an allocation.
const (
	// allocateTimeout bounds making an allocation, connecting included:
	// a TURN server answers in one or two round trips, so a server that
	// has not answered in this long is down or unreachable, and the
	// caller should hear so rather than wait.
	allocateTimeout = 10 * time.Second
	// transactionRTO is the first retransmission timeout of a request
	// over UDP (RFC 8489 says 500 ms by default; a relay on the internet
	// answers well within a quarter of that).
	transactionRTO = 250 * time.Millisecond
	// checkTimeout bounds one liveness check of an allocation.
	checkTimeout = 5 * time.Second
	// permitRefreshInterval renews the permissions Permit made: they last
	// five minutes on the server (RFC 8656 9), and renewing at two leaves
	// room for a renewal that is lost and retried at the next round.
	permitRefreshInterval = 2 * time.Minute
)

// ErrUnauthorized is returned (wrapped) when the server refused the
// credentials.
var ErrUnauthorized = errors.New("the relay refused the user name or password")

// Options adjust how Allocate reaches the server. The zero value is the
// production setting.
type Options struct {
	// TLSConfig is used for turns: servers; nil means the system's
	// certificate roots and the URL's host as the server name.
	TLSConfig *tls.Config
	// Logger receives the TURN library's messages at debug level; nil
	// means slog.Default().
	Logger *slog.Logger
}

// Allocation is a relayed address on a TURN server, kept alive (the TURN
// library refreshes the allocation, and the permissions its WriteTo
// made; the Allocation renews those Permit made). As a net.PacketConn it
// sends from the relayed address and receives what peers send to it; a
// peer's datagrams arrive only once Permit (or a first WriteTo) allowed
// its IP address.
type Allocation struct {
	net.PacketConn
	Server  Server
	Relayed netip.AddrPort // the address peers send to
	client  *turn.Client
	base    *watchedConn // the socket to the server: UDP, or TCP/TLS as packets
	log     *slog.Logger
	stop    context.CancelFunc // ends the renewal of permissions

	mu        sync.Mutex // guards following
	permitted map[netip.Addr]bool
}

// Allocate connects to the TURN server and makes an allocation, within
// allocateTimeout or ctx, whichever ends first. A refused login is
// ErrUnauthorized; an unreachable server is an error that says so.
func Allocate(ctx context.Context, srv Server, opts Options) (*Allocation, error) {
	ctx, cancel := context.WithTimeout(ctx, allocateTimeout)
	defer cancel()
	conn, serverAddr, err := connect(ctx, srv, opts)
	if err != nil {
		return nil, fmt.Errorf("relay %s: %w", srv, err)
	}
	base := &watchedConn{PacketConn: conn, lost: make(chan struct{})}
	user, pass := srv.credentials(time.Now())
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	client, err := turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: serverAddr,
		STUNServerAddr: serverAddr,
		Username:       user,
		Password:       pass,
		Software:       "punchdrop",
		RTO:            transactionRTO,
		Conn:           base,
		LoggerFactory:  pionLogs{log.With("relay", srv.String())},
	})
	if err == nil {
		err = client.Listen()
	}
	if err != nil {
		base.Close()
		return nil, fmt.Errorf("relay %s: %w", srv, err)
	}
	// The library's requests retransmit for half a minute; closing the
	// client and its socket when ctx ends cuts them short.
	stop := context.AfterFunc(ctx, func() { client.Close(); base.Close() })
	relayed, err := client.Allocate()
	if !stop() || err != nil {
		client.Close()
		base.Close()
		return nil, fmt.Errorf("relay %s: allocate: %w", srv, allocateError(ctx, err))
	}
	addr, ok := netip.AddrFromSlice(relayed.LocalAddr().(*net.UDPAddr).IP)
	if !ok {
		client.Close()
		base.Close()
		return nil, fmt.Errorf("relay %s: relayed address %s", srv, relayed.LocalAddr())
	}
	a := &Allocation{
		PacketConn: relayed,
		Server:     srv,
		Relayed:    netip.AddrPortFrom(addr.Unmap(), uint16(relayed.LocalAddr().(*net.UDPAddr).Port)),
		client:     client,
		base:       base,
		log:        log.With("relay", srv.String()),
		permitted:  map[netip.Addr]bool{},
	}
	renewCtx, stopRenewal := context.WithCancel(context.Background())
	a.stop = stopRenewal
	go a.renewPermits(renewCtx)
	return a, nil
}

// connect opens the socket to the server: a UDP socket, or a TCP or TLS
// connection that carries TURN messages as a stream (RFC 6062 framing
// is not needed: STUN and ChannelData carry their own lengths).
func connect(ctx context.Context, srv Server, opts Options) (net.PacketConn, string, error) {
	if srv.Transport == TransportUDP {
		conn, err := net.ListenPacket("udp", ":0")
		return conn, srv.Addr(), err
	}
	var conn net.Conn
	var err error
	if srv.Transport == TransportTLS {
		cfg := opts.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = srv.Host
		}
		conn, err = (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", srv.Addr())
	} else {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp", srv.Addr())
	}
	if err != nil {
		return nil, "", fmt.Errorf("connect: %w", err)
	}
	return turn.NewSTUNConn(conn), conn.RemoteAddr().String(), nil
}

// allocateError says plainly why an allocation failed: the server said
// no (and why), or it never answered.
func allocateError(ctx context.Context, err error) error {
	var te *stun.TurnError
	switch {
	case errors.As(err, &te) && te.ErrorCodeAttr.Code == stun.CodeUnauthorized:
		return fmt.Errorf("%w (%v)", ErrUnauthorized, err)
	case errors.As(err, &te):
		return fmt.Errorf("the relay refused: %v", err)
	case err == nil:
		err = ctx.Err()
	}
	return fmt.Errorf("no answer: the relay is down or unreachable, or UDP is blocked on the way (transport=tcp or turns: get through where UDP does not): %w", err)
}

// Lost is closed once the socket to the server fails: over TCP or TLS,
// the server closed or reset the connection (it stopped, or the network
// changed), and the allocation is gone with it. Over UDP nothing tells;
// Check does.
func (a *Allocation) Lost() <-chan struct{} { return a.base.lost }

// watchedConn is the socket to the server, which says when reading from
// it fails.
type watchedConn struct {
	net.PacketConn
	once sync.Once
	lost chan struct{} // closed when a read fails
}

func (c *watchedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, from, err := c.PacketConn.ReadFrom(b)
	if err != nil {
		c.once.Do(func() { close(c.lost) })
	}
	return n, from, err
}

// Permit lets peers at these addresses send to the relayed address
// (permissions are per IP address, RFC 8656 9) for as long as the
// allocation lives. Addresses whose IP is permitted already cost nothing.
func (a *Allocation) Permit(addrs ...netip.AddrPort) error {
	a.mu.Lock()
	var fresh []netip.Addr
	for _, p := range addrs {
		ip := p.Addr().Unmap()
		if !a.permitted[ip] && !slices.Contains(fresh, ip) {
			fresh = append(fresh, ip)
		}
	}
	a.mu.Unlock()
	if len(fresh) == 0 {
		return nil
	}
	if err := a.createPermissions(fresh...); err != nil {
		return err
	}
	a.mu.Lock()
	for _, ip := range fresh {
		a.permitted[ip] = true
	}
	a.mu.Unlock()
	return nil
}

// Retain keeps the permissions of keep only: the others are no longer
// renewed, and lapse at the server within its permission lifetime (5
// minutes). The set renewed then stays what the node's peers name now,
// however many addresses they named before.
func (a *Allocation) Retain(keep []netip.Addr) {
	a.mu.Lock()
	defer a.mu.Unlock()
	maps.DeleteFunc(a.permitted, func(ip netip.Addr, _ bool) bool { return !slices.Contains(keep, ip) })
}

// createPermissions asks the server for permissions for ips, once more
// if the server only wanted a fresh nonce.
func (a *Allocation) createPermissions(ips ...netip.Addr) error {
	peers := make([]net.Addr, len(ips))
	for i, ip := range ips {
		peers[i] = &net.UDPAddr{IP: ip.AsSlice()}
	}
	err := a.client.CreatePermission(peers...)
	if err != nil && err.Error() == "try again" { // a stale nonce, now replaced
		err = a.client.CreatePermission(peers...)
	}
	if err != nil {
		return fmt.Errorf("relay %s: permit %v: %w", a.Server, ips, err)
	}
	return nil
}

// renewPermits renews the permissions Permit made until ctx ends.
func (a *Allocation) renewPermits(ctx context.Context) {
	tick := time.NewTicker(permitRefreshInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		a.mu.Lock()
		ips := slices.Collect(maps.Keys(a.permitted))
		a.mu.Unlock()
		if len(ips) == 0 {
			continue
		}
		if err := a.createPermissions(ips...); err != nil {
			a.log.Debug("renew permissions", "err", err)
		}
	}
}

// Check asks the server about the allocation (a permission for the
// relay's own address, which only a live allocation can take), so that
// one lost to a server restart or a network change is noticed in
// seconds, not at the next refresh minutes later. A server that forbids
// that permission (403) still shows by its answer that the allocation
// lives.
func (a *Allocation) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.createPermissions(a.Relayed.Addr()) }()
	select {
	case err := <-done:
		var te *stun.TurnError
		if errors.As(err, &te) && te.ErrorCodeAttr.Code == stun.CodeForbidden {
			return nil
		}
		return err
	case <-ctx.Done():
		return fmt.Errorf("relay %s: no answer in %s", a.Server, checkTimeout)
	}
}

// Close gives the allocation back to the server and closes the socket.
func (a *Allocation) Close() error {
	a.stop()
	err := a.PacketConn.Close()
	a.client.Close()
	a.base.Close()
	return err
}
