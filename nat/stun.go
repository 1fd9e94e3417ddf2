package nat

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/stun/v3"
)

// Timing of Binding transactions.
const (
	// DefaultBindingTimeout bounds a Binding call whose ctx has no deadline.
	// RFC 5389's own schedule gives up after 39.5 s, which is far too long
	// for a person waiting on a desktop app; a server that has not answered
	// five retransmissions in 5 s is, for us, not there.
	DefaultBindingTimeout = 5 * time.Second

	// initialRTO is the wait before the first retransmission. RFC 5389
	// suggests 500 ms when nothing is known about the path, but allows less;
	// public STUN servers answer within one round trip (well under 100 ms on
	// most paths) and the request is one small datagram, so retrying sooner
	// costs nothing and hides a lost packet quickly.
	initialRTO = 100 * time.Millisecond

	// maxRTO caps the doubling (100, 200, 400, 800, 1600 ms), so that a long
	// ctx still gets a retransmission at least every 1.6 s instead of one
	// lonely packet near the end.
	maxRTO = 1600 * time.Millisecond
)

// maxSTUNMessage is the largest datagram HandleSTUN will decode. A Binding
// response is about 100 bytes; nothing we wait for comes close to an
// Ethernet MTU, so anything bigger is not an answer to us.
const maxSTUNMessage = 1500

// stunHeaderLen is the fixed STUN header: type, length, cookie, transaction ID.
const stunHeaderLen = 20

var (
	// ErrSTUNTimeout is returned when a Binding request got no answer
	// before its ctx deadline (or DefaultBindingTimeout) passed.
	ErrSTUNTimeout = errors.New("stun: no response")
	// ErrSTUNErrorResponse is returned, inside an *ErrorResponse, when the
	// server answered a Binding request with an error response.
	ErrSTUNErrorResponse = errors.New("stun: error response")
	// ErrSTUNBadRequest is returned when Binding is called with an invalid
	// server address or an unknown ChangeRequest.
	ErrSTUNBadRequest = errors.New("stun: bad request")
)

// ErrorResponse is a STUN error response (RFC 5389 §15.6). It matches
// ErrSTUNErrorResponse with errors.Is.
type ErrorResponse struct {
	Code   int    // e.g. 420 Unknown Attribute, sent for CHANGE-REQUEST by servers without RFC 5780
	Reason string // the server's reason phrase
}

func (e *ErrorResponse) Error() string {
	return fmt.Sprintf("stun: error response %d %q", e.Code, e.Reason)
}

// Unwrap lets errors.Is(err, ErrSTUNErrorResponse) match.
func (e *ErrorResponse) Unwrap() error { return ErrSTUNErrorResponse }

// codeUnknownAttribute is the error a server without RFC 5780 returns for
// CHANGE-REQUEST, a comprehension-required attribute it does not know.
const codeUnknownAttribute = 420

// ChangeRequest selects the RFC 5780 CHANGE-REQUEST flags of a Binding request.
type ChangeRequest uint8

// CHANGE-REQUEST values; the numbers are the flag bits on the wire.
const (
	NoChange     ChangeRequest = 0    // answer from the address the request went to
	ChangePort   ChangeRequest = 0x02 // answer from the same IP, the other port
	ChangeIPPort ChangeRequest = 0x06 // answer from the other IP and the other port
)

func (c ChangeRequest) String() string {
	switch c {
	case NoChange:
		return "none"
	case ChangePort:
		return "port"
	case ChangeIPPort:
		return "ip+port"
	}
	return fmt.Sprintf("change-request-%#x", uint8(c))
}

// PacketWriter sends one datagram from the node's shared socket; *quic.Transport and *net.UDPConn both satisfy it.
type PacketWriter interface {
	WriteTo(b []byte, addr net.Addr) (int, error)
}

// BindingResult is what a Binding success response said.
type BindingResult struct {
	// Mapped is the XOR-MAPPED-ADDRESS (or, from an RFC 3489 server, the
	// MAPPED-ADDRESS): our socket as the server saw it.
	Mapped netip.AddrPort
	// Other is the RFC 5780 OTHER-ADDRESS: the server's alternate IP and
	// port. Zero when the server did not send it.
	Other netip.AddrPort
	// Origin is the RFC 5780 RESPONSE-ORIGIN, the address the server says
	// it answered from. Zero when absent.
	Origin netip.AddrPort
	// From is the source address of the response datagram.
	From netip.AddrPort
	// RTT is the time from the first transmission to the response; with
	// retransmissions it overstates the true round trip.
	RTT time.Duration
}

// STUNClient runs STUN transactions over a socket it does not own.
type STUNClient struct {
	w   PacketWriter
	log *slog.Logger

	mu sync.Mutex
	// mu guards following.
	pending map[[stun.TransactionIDSize]byte]chan<- stunReply
}

// stunReply is a decoded response handed from HandleSTUN to the waiting Binding.
type stunReply struct {
	res BindingResult
	err error // *ErrorResponse for an error response
}

// NewSTUNClient returns a client that sends with w and logs to slog.Default().
func NewSTUNClient(w PacketWriter) *STUNClient {
	return &STUNClient{
		w:       w,
		log:     slog.Default().With("component", "stun"),
		pending: make(map[[stun.TransactionIDSize]byte]chan<- stunReply),
	}
}

// HandleSTUN is called by the socket's reader with every datagram for which
// stun.IsMessage is true. It returns true when the datagram answered a
// pending transaction. It is safe for concurrent use, never panics on
// malformed input and never blocks: b is not retained.
func (c *STUNClient) HandleSTUN(b []byte, from net.Addr) bool {
	if len(b) < stunHeaderLen || len(b) > maxSTUNMessage || !stun.IsMessage(b) {
		return false
	}
	id := [stun.TransactionIDSize]byte(b[8:stunHeaderLen])
	c.mu.Lock()
	_, ok := c.pending[id]
	c.mu.Unlock()
	if !ok {
		return false // not ours, or a duplicate of an answered one
	}
	reply, err := parseResponse(b, from)
	if err != nil {
		// Keep waiting: a retransmission may still bring a good answer.
		c.log.Debug("dropping malformed STUN response", "from", from, "err", err)
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.pending[id]
	if !ok {
		return false
	}
	delete(c.pending, id)
	ch <- reply // buffered with room for one, and only one sender gets here
	return true
}

// parseResponse decodes a Binding success or error response.
func parseResponse(b []byte, from net.Addr) (stunReply, error) {
	if n := int(binary.BigEndian.Uint16(b[2:4])); len(b) != stunHeaderLen+n || n%4 != 0 {
		return stunReply{}, fmt.Errorf("length field %d does not match a %d-byte datagram", n, len(b))
	}
	m := new(stun.Message)
	if err := stun.Decode(b, m); err != nil {
		return stunReply{}, fmt.Errorf("decode: %w", err)
	}
	if m.Type.Method != stun.MethodBinding {
		return stunReply{}, fmt.Errorf("unexpected method %v", m.Type.Method)
	}
	if m.Contains(stun.AttrFingerprint) {
		if err := stun.Fingerprint.Check(m); err != nil {
			return stunReply{}, fmt.Errorf("fingerprint: %w", err)
		}
	}
	switch m.Type.Class {
	case stun.ClassErrorResponse:
		var ec stun.ErrorCodeAttribute
		if err := ec.GetFrom(m); err != nil {
			return stunReply{}, fmt.Errorf("error response without ERROR-CODE: %w", err)
		}
		// coturn pads its reason phrase with NULs inside the attribute.
		reason := strings.TrimRight(string(ec.Reason), "\x00")
		return stunReply{err: &ErrorResponse{Code: int(ec.Code), Reason: reason}}, nil
	case stun.ClassSuccessResponse:
	default:
		return stunReply{}, fmt.Errorf("unexpected class %v", m.Type.Class)
	}
	var r BindingResult
	var err error
	r.From = addrPortOf(from)
	if m.Contains(stun.AttrXORMappedAddress) {
		r.Mapped, err = getAddr(m, stun.AttrXORMappedAddress)
	} else {
		r.Mapped, err = getAddr(m, stun.AttrMappedAddress)
	}
	if err != nil {
		return stunReply{}, fmt.Errorf("mapped address: %w", err)
	}
	if m.Contains(stun.AttrOtherAddress) {
		if r.Other, err = getAddr(m, stun.AttrOtherAddress); err != nil {
			return stunReply{}, fmt.Errorf("OTHER-ADDRESS: %w", err)
		}
	}
	if m.Contains(stun.AttrResponseOrigin) {
		if r.Origin, err = getAddr(m, stun.AttrResponseOrigin); err != nil {
			return stunReply{}, fmt.Errorf("RESPONSE-ORIGIN: %w", err)
		}
	}
	return stunReply{res: r}, nil
}

// getAddr decodes an address attribute. pion/stun's getters accept a
// truncated value and zero-fill the missing bytes of the IP, so the length
// is checked here first: 8 bytes for IPv4, 20 for IPv6 (RFC 5389 §15.1).
func getAddr(m *stun.Message, t stun.AttrType) (netip.AddrPort, error) {
	v, err := m.Get(t)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if !(len(v) == 8 && v[0] == 0 && v[1] == 1 || len(v) == 20 && v[0] == 0 && v[1] == 2) {
		return netip.AddrPort{}, fmt.Errorf("%v: bad family or length %d", t, len(v))
	}
	var a stun.MappedAddress
	if t == stun.AttrXORMappedAddress {
		var x stun.XORMappedAddress
		err = x.GetFrom(m)
		a = stun.MappedAddress(x)
	} else {
		err = a.GetFromAs(m, t)
	}
	if err != nil {
		return netip.AddrPort{}, err
	}
	addr, ok := netip.AddrFromSlice(a.IP)
	if !ok || a.Port == 0 || addr.IsUnspecified() {
		return netip.AddrPort{}, fmt.Errorf("%v: unusable address %v", t, a)
	}
	return netip.AddrPortFrom(addr.Unmap(), uint16(a.Port)), nil
}

// addrPortOf converts a datagram's source address; zero when unknown.
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	if u, ok := a.(*net.UDPAddr); ok && u != nil {
		ap = u.AddrPort()
	} else if a != nil {
		ap, _ = netip.ParseAddrPort(a.String())
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// Binding sends a Binding request to server and waits for the answer,
// retransmitting the same transaction after 100, 200, 400, 800 ms and then
// every 1.6 s until ctx ends (DefaultBindingTimeout when ctx has no
// deadline). change selects the RFC 5780 CHANGE-REQUEST flags. A request
// that times out returns an error matching ErrSTUNTimeout (and, when ctx's
// deadline passed, context.DeadlineExceeded); an error response returns an
// *ErrorResponse.
func (c *STUNClient) Binding(ctx context.Context, server netip.AddrPort, change ChangeRequest) (BindingResult, error) {
	if !server.IsValid() || server.Port() == 0 {
		return BindingResult{}, fmt.Errorf("binding %v: %w: invalid server address", server, ErrSTUNBadRequest)
	}
	if change != NoChange && change != ChangePort && change != ChangeIPPort {
		return BindingResult{}, fmt.Errorf("binding %v: %w: unknown change request %v", server, ErrSTUNBadRequest, change)
	}
	server = netip.AddrPortFrom(server.Addr().Unmap(), server.Port())
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultBindingTimeout)
		defer cancel()
	}

	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest}
	if change != NoChange {
		setters = append(setters, stun.RawAttribute{Type: stun.AttrChangeRequest, Value: []byte{0, 0, 0, byte(change)}})
	}
	// FINGERPRINT marks the request as STUN for servers that multiplex
	// protocols on one port (RFC 5389 §7.3).
	setters = append(setters, stun.Fingerprint)
	req, err := stun.Build(setters...)
	if err != nil {
		return BindingResult{}, fmt.Errorf("binding %v: build request: %w", server, err)
	}

	ch := make(chan stunReply, 1)
	c.mu.Lock()
	c.pending[req.TransactionID] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, req.TransactionID)
		c.mu.Unlock()
	}()

	dst := net.UDPAddrFromAddrPort(server)
	start := time.Now()
	rto := initialRTO
	timer := time.NewTimer(rto)
	defer timer.Stop()
	for sends := 1; ; sends++ {
		if _, err := c.w.WriteTo(req.Raw, dst); err != nil {
			return BindingResult{}, fmt.Errorf("binding %v (change %v): send: %w", server, change, err)
		}
		select {
		case r := <-ch:
			if r.err != nil {
				return BindingResult{}, fmt.Errorf("binding %v (change %v): %w", server, change, r.err)
			}
			r.res.RTT = time.Since(start)
			return r.res, nil
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return BindingResult{}, fmt.Errorf("binding %v (change %v): %w after %d sends in %v: %w",
					server, change, ErrSTUNTimeout, sends, time.Since(start).Round(time.Millisecond), ctx.Err())
			}
			return BindingResult{}, fmt.Errorf("binding %v (change %v): %w", server, change, ctx.Err())
		case <-timer.C:
			c.log.Debug("retransmitting binding request", "server", server, "change", change, "send", sends+1)
			rto = min(2*rto, maxRTO)
			timer.Reset(rto)
		}
	}
}

// DefaultSTUNServers returns a few well-known public STUN servers (a fresh
// slice each call). They are not known to support RFC 5780, so with these
// alone filtering stays unknown and mapping is judged by comparing the
// mappings two servers at different IPs report.
func DefaultSTUNServers() []string {
	return []string{
		"stun.l.google.com:19302",
		"stun1.l.google.com:19302",
		"stun.cloudflare.com:3478",
	}
}

// resolveServer turns "host:port" into one address the socket bound to
// local can reach, preferring IPv4.
func resolveServer(ctx context.Context, hostport string, local netip.AddrPort) (netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolve: %w", err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve %q: bad port %q", hostport, portStr)
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else if addrs, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host); err != nil {
		return netip.AddrPort{}, fmt.Errorf("resolve %q: %w", host, err)
	}
	// A socket bound to one address speaks only its family; a wildcard
	// ([::]) or unknown one may speak both.
	l := local.Addr().Unmap()
	addrs = slices.DeleteFunc(addrs, func(a netip.Addr) bool {
		a = a.Unmap()
		return local.IsValid() && (l.Is4() && !a.Is4() || l.Is6() && !l.IsUnspecified() && !a.Is6())
	})
	// IPv4 (32 bits) first; the stable sort keeps the resolver's order
	// within a family.
	slices.SortStableFunc(addrs, func(a, b netip.Addr) int { return cmp.Compare(a.Unmap().BitLen(), b.Unmap().BitLen()) })
	if len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("resolve %q: no address the socket at %v can reach", host, local)
	}
	return netip.AddrPortFrom(addrs[0].Unmap(), uint16(port)), nil
}
