// Package relay keeps an allocation on a TURN server (RFC 8656), so that
// a node no peer can reach directly still has an address every peer can
// send to: the relayed address on the TURN server. The relay sees only
// QUIC ciphertext. Any standard TURN server works (coturn, or a hosted
// TURN service); the node reaches it over UDP, TCP or TLS, so a network
// that drops all UDP still gets through.
//
// TURN runs on a socket of its own, never on the node's QUIC socket: its
// ChannelData messages start with 0x40–0x4F, which quic-go takes for QUIC
// packets. The Allocation is itself a net.PacketConn (what the relayed
// address receives, and sends from), on which the node runs QUIC as on
// any socket.
package relay

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Default ports (RFC 7065): 3478 for TURN over UDP and TCP, 5349 for TURN
// over TLS.
const (
	DefaultPort    = 3478
	DefaultTLSPort = 5349
)

// Transports to the TURN server.
const (
	TransportUDP = "udp"
	TransportTCP = "tcp"
	TransportTLS = "tls" // turns: URLs
)

// ErrBadURL is returned (wrapped, with what is wrong) for a relay URL
// that does not parse.
var ErrBadURL = errors.New("bad relay URL")

// Server is a TURN server and how to log in to it, as a relay URL names
// it: turn:[USER:PASS@]HOST[:PORT][?transport=udp|tcp][&secret=S], or
// turns:… for TLS.
type Server struct {
	Host      string // a name or an IP address
	Port      int
	Transport string // TransportUDP, TransportTCP or TransportTLS
	// Username and Password are long-term credentials (RFC 8489 9.2).
	Username string
	Password string
	// Secret, when set, is the shared secret of the TURN REST API
	// (what hosted TURN services and coturn's use-auth-secret use):
	// each allocation gets time-limited credentials made from it, under
	// Username (or "punchdrop" when empty).
	Secret string
}

// ParseURL reads a relay URL. Errors say what is wrong and never repeat
// the password or secret.
func ParseURL(s string) (Server, error) {
	fail := func(format string, args ...any) (Server, error) {
		return Server{}, fmt.Errorf("%w: %s", ErrBadURL, fmt.Sprintf(format, args...))
	}
	scheme, rest, ok := strings.Cut(strings.TrimSpace(s), ":")
	var srv Server
	switch strings.ToLower(scheme) {
	case "turn":
		srv.Transport, srv.Port = TransportUDP, DefaultPort
	case "turns":
		srv.Transport, srv.Port = TransportTLS, DefaultTLSPort
	default:
		return fail("it must start with turn: or turns:, e.g. turn:user:pass@relay.example.com:3478")
	}
	if !ok || rest == "" {
		return fail("no server after %s:", scheme)
	}
	rest, query, _ := strings.Cut(rest, "?")
	if user, host, ok := strings.Cut(rest, "@"); ok {
		name, pass, _ := strings.Cut(user, ":")
		if name == "" {
			return fail("credentials must be USER:PASS (or USER with a secret) before the @")
		}
		var err error
		if srv.Username, err = url.PathUnescape(name); err != nil {
			return fail("the user name is not %%-escaped properly")
		}
		if srv.Password, err = url.PathUnescape(pass); err != nil {
			return fail("the password is not %%-escaped properly")
		}
		rest = host
	}
	if err := srv.parseHostPort(rest); err != nil {
		return fail("%v", err)
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return fail("the part after ? does not parse")
	}
	for key, v := range values {
		switch key {
		case "transport":
			switch t := strings.ToLower(v[0]); {
			case srv.Transport == TransportTLS && t != TransportTCP:
				return fail("turns: runs over TCP; transport=%s does not go with it", t)
			case t == TransportUDP, t == TransportTCP:
				if srv.Transport != TransportTLS {
					srv.Transport = t
				}
			default:
				return fail("transport must be udp or tcp, not %q", v[0])
			}
		case "secret":
			srv.Secret = v[0]
		default:
			return fail("unknown parameter %q (transport and secret are known)", key)
		}
	}
	switch {
	case srv.Secret != "" && srv.Password != "":
		return fail("give a password or a secret, not both")
	case srv.Username != "" && srv.Password == "" && srv.Secret == "":
		return fail("user %q has no password: USER:PASS@, or a secret=", srv.Username)
	}
	return srv, nil
}

func (s *Server) parseHostPort(hp string) error {
	if hp == "" {
		return errors.New("no server name")
	}
	host, port := hp, ""
	if h, p, err := net.SplitHostPort(hp); err == nil {
		host, port = h, p
	} else if strings.Count(hp, ":") == 1 {
		return fmt.Errorf("%q: %v", hp, err)
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" || strings.ContainsAny(host, "/ ") {
		return fmt.Errorf("%q is not a host name", host)
	}
	s.Host = host
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q is not a port", port)
		}
		s.Port = n
	}
	return nil
}

// Addr is the server's host and port, for dialing.
func (s Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// String is the URL with the password and the secret left out, for logs
// and status lines.
func (s Server) String() string {
	scheme := "turn"
	if s.Transport == TransportTLS {
		scheme = "turns"
	}
	var b strings.Builder
	b.WriteString(scheme + ":")
	if s.Username != "" {
		b.WriteString(url.PathEscape(s.Username) + "@")
	}
	b.WriteString(s.Addr())
	if s.Transport == TransportTCP {
		b.WriteString("?transport=tcp")
	}
	return b.String()
}
