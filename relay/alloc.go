package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
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
// library refreshes the allocation and its permissions). As a
// net.PacketConn it sends from the relayed address and receives what
// peers send to it; a peer's datagrams arrive only once Permit (or a
// first WriteTo) allowed its IP address.
type Allocation struct {
	net.PacketConn
	Server  Server
	Relayed netip.AddrPort // the address peers send to
	client  *turn.Client
	base    net.PacketConn // the socket to the server: UDP, or TCP/TLS as packets
}

// Allocate connects to the TURN server and makes an allocation, within
// allocateTimeout or ctx, whichever ends first. A refused login is
// ErrUnauthorized; an unreachable server is an error that says so.
func Allocate(ctx context.Context, srv Server, opts Options) (*Allocation, error) {
	ctx, cancel := context.WithTimeout(ctx, allocateTimeout)
	defer cancel()
	base, serverAddr, err := connect(ctx, srv, opts)
	if err != nil {
		return nil, fmt.Errorf("relay %s: %w", srv, err)
	}
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
	return &Allocation{
		PacketConn: relayed,
		Server:     srv,
		Relayed:    netip.AddrPortFrom(addr.Unmap(), uint16(relayed.LocalAddr().(*net.UDPAddr).Port)),
		client:     client,
		base:       base,
	}, nil
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

// Permit lets peers at these addresses send to the relayed address
// (permissions are per IP address, RFC 8656 9). The library refreshes
// them for as long as the allocation lives.
func (a *Allocation) Permit(addrs ...netip.AddrPort) error {
	peers := make([]net.Addr, len(addrs))
	for i, p := range addrs {
		peers[i] = net.UDPAddrFromAddrPort(p)
	}
	if err := a.client.CreatePermission(peers...); err != nil {
		return fmt.Errorf("relay %s: permit %v: %w", a.Server, addrs, err)
	}
	return nil
}

// Check asks the server about the allocation (a permission for the
// relay's own address, which only a live allocation can take), so that
// one lost to a server restart is noticed in seconds, not at the next
// refresh minutes later.
func (a *Allocation) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Permit(a.Relayed) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("relay %s: no answer in %s", a.Server, checkTimeout)
	}
}

// Close gives the allocation back to the server and closes the socket.
func (a *Allocation) Close() error {
	err := a.PacketConn.Close()
	a.client.Close()
	a.base.Close()
	return err
}
