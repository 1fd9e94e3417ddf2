package session

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ConnStringScheme starts every connection string.
const ConnStringScheme = "punchdrop:"

// Limits on what a connection string may carry. They keep the line short
// enough to paste into a chat and bound what a parser accepts.
const (
	// MaxConnStringLen bounds the whole line.
	MaxConnStringLen = 1024
	// MaxLANCandidates bounds the host candidates; a laptop has a handful
	// of interfaces at most.
	MaxLANCandidates = 8
	// MaxDirectCandidates bounds the public addresses after the first: a
	// dual-stack host names its global IPv6 addresses there, and lists
	// at most maxIPv6PerKind of them.
	MaxDirectCandidates = 4
	// MaxRelayCandidates bounds the relayed addresses: a node holds one
	// allocation per configured relay, and nobody configures more than a
	// few.
	MaxRelayCandidates = 4
	// MaxNameLen bounds the display name, in bytes.
	MaxNameLen = 64
)

// ErrBadConnString is returned, wrapped with the reason, for every string
// ParseConnString refuses.
var ErrBadConnString = errors.New("bad connection string")

// ConnString is what one node tells another so they can find each other:
//
//	punchdrop:<nodeid>@203.0.113.7:41641,[2001:db8::7]:41641?lan=192.168.1.20:41641&relay=198.51.100.4:50123&nat=hard&name=alice
//
// The public addresses after the '@' are optional (STUN may have failed,
// the host may have no IPv6), but a string must carry at least one
// address. IPv6 addresses are written in brackets, as netip prints them.
type ConnString struct {
	ID     NodeID
	Public netip.AddrPort // STUN-mapped address, else a public host one; zero when unknown
	// Direct are further public addresses, reached with no NAT in
	// between: a dual-stack host's global IPv6 addresses. Only a string
	// with a Public address has them.
	Direct []netip.AddrPort
	LAN    []netip.AddrPort // host candidates, for peers behind the same NAT
	Relay  []netip.AddrPort // relayed addresses on TURN servers, while held
	// HardNAT (nat=hard) says the node's NAT maps a new public port per
	// destination, so Public is not where peers reach it: a peer behind an
	// easy NAT that filters then tries birthday probing (birthday.go).
	HardNAT bool
	Name    string // display name; may be empty
}

// String prints the one canonical form that ParseConnString reads back.
func (c ConnString) String() string {
	var b strings.Builder
	b.WriteString(ConnStringScheme)
	b.WriteString(c.ID.String())
	b.WriteByte('@')
	if c.Public.IsValid() {
		b.WriteString(c.Public.String())
		for _, a := range c.Direct {
			b.WriteByte(',')
			b.WriteString(a.String())
		}
	}
	// Addresses need no escaping in a query; writing them bare keeps the
	// line readable. The name is escaped.
	sep := byte('?')
	for _, list := range []struct {
		key   string
		addrs []netip.AddrPort
	}{{"lan", c.LAN}, {"relay", c.Relay}} {
		if len(list.addrs) == 0 {
			continue
		}
		b.WriteByte(sep)
		b.WriteString(list.key + "=")
		for i, a := range list.addrs {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(a.String())
		}
		sep = '&'
	}
	if c.HardNAT {
		b.WriteByte(sep)
		b.WriteString("nat=hard")
		sep = '&'
	}
	if c.Name != "" {
		b.WriteByte(sep)
		b.WriteString("name=")
		b.WriteString(url.QueryEscape(c.Name))
	}
	return b.String()
}

// ParseConnString parses a connection string: strictly where it knows the
// field, so that a bad address or name is an error that says what is
// wrong, never a guess; and forward-compatibly where it does not, so that
// a string from a newer agent (as relay= and nat=hard once were) still
// reads:
//
//   - an unknown field with a well-formed name (lowercase letters,
//     digits, '_' or '-', at most maxFieldNameLen characters) is
//     skipped; a malformed name is an error;
//   - nat= with a value other than hard (a kind of NAT a newer agent
//     names) is skipped, as telling nothing; nat=easy is what an easy
//     NAT would say, and reads as not hard;
//   - every field, known or not, may be given once.
//
// The whole string is at most MaxConnStringLen characters. Leading and
// trailing white space (from copy and paste) is ignored.
func ParseConnString(s string) (ConnString, error) {
	var c ConnString
	fail := func(format string, args ...any) (ConnString, error) {
		return ConnString{}, fmt.Errorf("%w: %s", ErrBadConnString, fmt.Sprintf(format, args...))
	}
	s = strings.TrimSpace(s)
	if len(s) > MaxConnStringLen {
		return fail("%d characters, at most %d allowed", len(s), MaxConnStringLen)
	}
	rest, ok := strings.CutPrefix(s, ConnStringScheme)
	if !ok {
		return fail("%q does not start with %q", clip(s), ConnStringScheme)
	}
	idText, rest, ok := strings.Cut(rest, "@")
	if !ok {
		return fail("no '@' after the node ID in %q", clip(s))
	}
	id, err := ParseNodeID(idText)
	if err != nil {
		return fail("%v", err)
	}
	c.ID = id
	addrText, query, _ := strings.Cut(rest, "?")
	if addrText != "" {
		public, err := parseAddrList(addrText, 1+MaxDirectCandidates)
		if err != nil {
			return fail("public address: %v", err)
		}
		c.Public = public[0]
		if len(public) > 1 {
			c.Direct = public[1:]
		}
	}
	values, err := url.ParseQuery(query)
	if err != nil {
		return fail("query %q: %v", clip(query), err)
	}
	for key, vals := range values {
		if len(vals) != 1 {
			return fail("%q given %d times", key, len(vals))
		}
		switch key {
		case "lan":
			if c.LAN, err = parseAddrList(vals[0], MaxLANCandidates); err != nil {
				return fail("lan: %v", err)
			}
		case "relay":
			if c.Relay, err = parseAddrList(vals[0], MaxRelayCandidates); err != nil {
				return fail("relay: %v", err)
			}
		case "nat":
			// "easy", or a kind a newer agent names: not hard, as
			// far as this build can tell.
			c.HardNAT = vals[0] == "hard"
		case "name":
			if err := CheckName(vals[0]); err != nil {
				return fail("%v", err)
			}
			c.Name = vals[0]
		default:
			if !wellFormedFieldName(key) {
				return fail("field name %q: want lowercase letters, digits, '_' or '-', at most %d", clip(key), maxFieldNameLen)
			}
			// A newer agent's field: skipped.
		}
	}
	if !c.Public.IsValid() && len(c.LAN) == 0 && len(c.Relay) == 0 {
		return fail("no address: the string needs a public, a LAN or a relay address")
	}
	return c, nil
}

// maxFieldNameLen bounds the name of a query field ParseConnString skips:
// this build's longest is 5, and a newer one's would be a word or two.
const maxFieldNameLen = 32

// wellFormedFieldName reports whether name could be a field of a newer
// agent's connection string: 1 to maxFieldNameLen lowercase ASCII letters,
// digits, '_' or '-'.
func wellFormedFieldName(name string) bool {
	if name == "" || len(name) > maxFieldNameLen {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// parseAddrList reads a comma-separated list of at most max addresses.
func parseAddrList(v string, max int) ([]netip.AddrPort, error) {
	parts := strings.Split(v, ",")
	if len(parts) > max {
		return nil, fmt.Errorf("%d addresses, at most %d allowed", len(parts), max)
	}
	out := make([]netip.AddrPort, 0, len(parts))
	for _, p := range parts {
		a, err := parseCandidate(p)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func parseCandidate(s string) (netip.AddrPort, error) {
	a, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP:port address", clip(s))
	}
	if a.Port() == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q has port 0", s)
	}
	ip := a.Addr()
	if ip.Zone() != "" || ip.IsUnspecified() || ip.IsMulticast() || !ip.IsValid() {
		return netip.AddrPort{}, fmt.Errorf("%q is not a unicast address", s)
	}
	return netip.AddrPortFrom(ip.Unmap(), a.Port()), nil
}

// CheckName reports whether name is acceptable as a display name: valid
// UTF-8, printable, no leading or trailing space, at most MaxNameLen bytes.
func CheckName(name string) error {
	switch {
	case len(name) > MaxNameLen:
		return fmt.Errorf("name is %d bytes, at most %d allowed", len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q is not UTF-8", name)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("name %q starts or ends with space", name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("name %q has a control character", name)
		}
	}
	return nil
}

// clip shortens s for an error message so a huge paste does not flood it.
func clip(s string) string {
	const max = 60
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
