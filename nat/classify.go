package nat

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Behavior is a NAT mapping or filtering behaviour in RFC 4787 words.
type Behavior string

// Behaviours (RFC 4787 §4.1 mapping, §5 filtering).
const (
	Unknown                 Behavior = "unknown"
	EndpointIndependent     Behavior = "endpoint-independent"
	AddressDependent        Behavior = "address-dependent"
	AddressAndPortDependent Behavior = "address-and-port-dependent"
)

// Timeouts of the classification probes. Each is also bounded by Classify's ctx.
const (
	// serverProbeTimeout bounds the first Binding to each server. A public
	// STUN server answers within one round trip; 2 s covers five
	// transmissions (0, 100, 300, 700, 1500 ms), so a server that stays
	// silent that long is treated as down rather than holding Classify up.
	serverProbeTimeout = 2 * time.Second

	// filterProbeTimeout bounds each CHANGE-REQUEST probe. Behind a
	// filtering NAT the answer never comes: the missing answer IS the
	// result, so every restricted NAT pays this wait in full. One second is
	// many round trips to any STUN server and four transmissions (0, 100,
	// 300, 700 ms), so a lost packet rarely passes for filtering.
	filterProbeTimeout = 1 * time.Second

	// mappingProbeTimeout bounds RFC 5780 mapping tests II and III. They go
	// to an address we send to, so every NAT lets the answer in; only loss
	// or a broken server makes them wait, hence a little more than the
	// filtering probes.
	mappingProbeTimeout = 1500 * time.Millisecond
)

// ErrNoSTUNServer is returned when Classify had no server to ask, or none
// of the servers answered.
var ErrNoSTUNServer = errors.New("nat: no STUN server answered")

// Report is plain data about the node's NAT, as Classify measured it.
type Report struct {
	// PublicAddr is our socket's address as the first server (in the
	// order given) that answered saw it. Zero when no server answered.
	PublicAddr netip.AddrPort
	// NoNAT is true when PublicAddr is one of the node's own addresses:
	// nothing translates its packets (a firewall may still filter).
	NoNAT bool
	// Mapping says whether the NAT keeps one public address and port for
	// our socket whatever the destination (endpoint-independent, "cone")
	// or picks a new one per destination address or address and port
	// ("symmetric"). Unknown when it could not be measured.
	Mapping Behavior
	// Filtering says whose unsolicited packets the NAT lets in to the
	// mapped port: anyone's (endpoint-independent), only from addresses we
	// sent to (address-dependent), or only from exact address and port we
	// sent to (address-and-port-dependent). Unknown without RFC 5780.
	Filtering Behavior
	// RFC5780 is true when a server gave OTHER-ADDRESS and honoured
	// CHANGE-REQUEST, so the full RFC 5780 tests ran.
	RFC5780 bool
	// Servers lists the servers (as given) that answered, in the order given.
	Servers []string
	// Time is when Classify finished; Duration is how long it took.
	Time     time.Time
	Duration time.Duration
	// Err says, for a person, why some of the answers are missing or
	// unknown; empty when every test ran.
	Err string
}

// PlainWords describes the NAT for a person.
func (r Report) PlainWords() string {
	switch {
	case !r.PublicAddr.IsValid():
		return "unknown: no STUN server answered"
	case r.NoNAT && (r.Filtering == AddressDependent || r.Filtering == AddressAndPortDependent):
		return "no NAT, but a firewall drops unsolicited packets"
	case r.NoNAT:
		return "no NAT (public address)"
	case r.Mapping == EndpointIndependent:
		switch r.Filtering {
		case EndpointIndependent:
			return "easy NAT (full cone)"
		case AddressDependent:
			return "restricted cone NAT"
		case AddressAndPortDependent:
			return "port-restricted cone NAT"
		}
		return "cone NAT (filtering unknown)"
	case r.Mapping == AddressDependent || r.Mapping == AddressAndPortDependent:
		return "symmetric NAT: direct connections to cone NATs, not to other symmetric ones"
	}
	return "NAT of unknown kind"
}

// outcome is what became of one CHANGE-REQUEST probe.
type outcome uint8

const (
	notRun      outcome = iota // no RFC 5780 server to run it against
	answered                   // the answer from the changed address came in
	noAnswer                   // timed out: dropped by the NAT (or lost)
	unsupported                // error 420, or the server ignored CHANGE-REQUEST
	failed                     // could not run: send error, ctx cancelled, odd error
)

// observations are the probe results decide works on.
type observations struct {
	local     []netip.AddrPort // the node's own addresses for its socket; port 0 matches any port
	mapped    netip.AddrPort   // test I mapping from the primary server; zero when none answered
	second    netip.AddrPort   // test I mapping from another server at another address; zero when none
	rfc5780   bool             // a server gave a usable OTHER-ADDRESS
	rfcMapped netip.AddrPort   // test I mapping from that RFC 5780 server
	altIP     netip.AddrPort   // test II: mapping via the alternate IP, primary port; zero when unanswered
	altIPPort netip.AddrPort   // test III: mapping via the alternate IP and port; zero when unanswered
	// Filtering probes to the RFC 5780 server.
	changeIPPort, changePort outcome
}

// decision is decide's verdict.
type decision struct {
	noNAT              bool
	mapping, filtering Behavior
	rfc5780            bool
}

// decide turns probe results into behaviours (RFC 5780 §4.3, §4.4). It is
// pure, so every branch is tested without a network.
func decide(o observations) decision {
	d := decision{mapping: Unknown, filtering: Unknown}
	if !o.mapped.IsValid() {
		return d
	}
	d.noNAT = isLocal(o.mapped, o.local)
	switch {
	case d.noNAT:
		d.mapping = EndpointIndependent
	case o.rfc5780 && o.altIP.IsValid():
		switch {
		case o.altIP == o.rfcMapped:
			d.mapping = EndpointIndependent
		case o.altIPPort == o.altIP:
			d.mapping = AddressDependent
		default:
			// Different for test III, or test III unanswered: the mapping
			// depends at least on the address; assume the stricter case.
			d.mapping = AddressAndPortDependent
		}
	case o.second.IsValid():
		// Two servers at different IPs and ports: the same mapping means
		// endpoint-independent. A different one cannot tell whether the
		// address alone or address and port mattered (that needs one
		// server's two ports); report the stricter, which is what the
		// punching strategy must assume anyway.
		if o.second == o.mapped {
			d.mapping = EndpointIndependent
		} else {
			d.mapping = AddressAndPortDependent
		}
	}
	if !o.rfc5780 || o.changeIPPort == unsupported || o.changePort == unsupported {
		return d
	}
	d.rfc5780 = true
	switch {
	case o.changeIPPort == answered:
		d.filtering = EndpointIndependent
	case o.changePort == answered:
		d.filtering = AddressDependent
	case o.changeIPPort == noAnswer && o.changePort == noAnswer:
		d.filtering = AddressAndPortDependent
	}
	return d
}

// isLocal reports whether a is one of the node's own addresses.
func isLocal(a netip.AddrPort, local []netip.AddrPort) bool {
	return slices.ContainsFunc(local, func(l netip.AddrPort) bool {
		return l.Addr() == a.Addr() && (l.Port() == 0 || l.Port() == a.Port())
	})
}

// localCandidates lists the node's own addresses for a socket bound to
// local: local itself, or, for a wildcard (or unknown) address, every
// interface address with local's port (0, "any port", when unknown).
func localCandidates(local netip.AddrPort, ifaces []netip.Addr) []netip.AddrPort {
	if local.IsValid() && !local.Addr().IsUnspecified() {
		return []netip.AddrPort{netip.AddrPortFrom(local.Addr().Unmap(), local.Port())}
	}
	out := make([]netip.AddrPort, 0, len(ifaces))
	for _, a := range ifaces {
		out = append(out, netip.AddrPortFrom(a.Unmap(), local.Port()))
	}
	return out
}

// interfaceAddrs lists the host's interface addresses.
func interfaceAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}

// serverResult is test I against one server.
type serverResult struct {
	name string
	addr netip.AddrPort
	res  BindingResult
	err  error
}

// rfc5780Capable reports whether the server named an alternate address
// that differs in both IP and port, which the RFC 5780 tests need.
func (s serverResult) rfc5780Capable() bool {
	o := s.res.Other
	return s.err == nil && o.IsValid() && o.Addr() != s.addr.Addr() && o.Port() != s.addr.Port()
}

// Classify runs the RFC 5780 tests against servers ("host:port"; names are
// resolved with net.DefaultResolver, IPv4 first) from the socket bound to
// local, and returns a Report. It returns an error matching ErrNoSTUNServer
// when no server answered; otherwise a nil error, with whatever could not
// be measured reported as Unknown and explained in Report.Err. When ctx
// ends first, it returns what it measured with an error wrapping ctx's.
//
// Order matters: filtering is measured before the mapping tests that send
// to the server's alternate address, since those would open an address- or
// port-restricted filter to that address and fake endpoint-independent
// filtering (RFC 5780 §4.4: the tests are sensitive to prior NAT state).
// For the same reason, servers should not include another server's
// alternate address. Probes run concurrently within each step.
func Classify(ctx context.Context, c *STUNClient, local netip.AddrPort, servers []string) (Report, error) {
	start := time.Now()
	rep := Report{Mapping: Unknown, Filtering: Unknown}
	done := func(err error, problems []string) (Report, error) {
		rep.Time = time.Now()
		rep.Duration = rep.Time.Sub(start)
		rep.Err = strings.Join(problems, "; ")
		if err != nil && rep.Err == "" {
			rep.Err = err.Error()
		}
		return rep, err
	}
	if c == nil {
		return done(errors.New("classify: nil STUNClient"), nil)
	}
	if len(servers) == 0 {
		return done(fmt.Errorf("classify: %w: no servers given", ErrNoSTUNServer), nil)
	}

	// Test I against every server at once.
	first := make([]serverResult, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() { first[i] = probeServer(ctx, c, s, local) })
	}
	wg.Wait()

	var problems []string
	var failures []error
	var primary, rfc *serverResult
	var o observations
	for i := range first {
		r := &first[i]
		if r.err != nil {
			failures = append(failures, r.err)
			continue
		}
		rep.Servers = append(rep.Servers, r.name)
		switch {
		case primary == nil:
			primary = r
		case !o.second.IsValid() && r.addr.Addr() != primary.addr.Addr():
			// Only another IP helps: the same mapping from another port
			// of the same IP would not rule out address-dependent mapping.
			o.second = r.res.Mapped
		}
		if rfc == nil && r.rfc5780Capable() {
			rfc = r
		}
	}
	if primary == nil {
		return done(fmt.Errorf("classify: %w: %w", ErrNoSTUNServer, errors.Join(failures...)), nil)
	}
	note := func(errs ...error) {
		for _, err := range errs {
			if err != nil {
				problems = append(problems, err.Error())
			}
		}
	}
	note(failures...)
	rep.PublicAddr = primary.res.Mapped
	o.mapped = primary.res.Mapped
	if o.local = localCandidates(local, nil); len(o.local) == 0 {
		o.local = localCandidates(local, interfaceAddrs())
	}

	if rfc == nil {
		problems = append(problems, "no server supports RFC 5780 (OTHER-ADDRESS), so filtering was not measured")
	} else {
		o.rfc5780 = true
		o.rfcMapped = rfc.res.Mapped
		// Filtering first (see above). Both probes go to the primary
		// address, so they do not disturb each other.
		var errIPPort, errPort, errII, errIII error
		wg.Go(func() { o.changeIPPort, errIPPort = probeChange(ctx, c, rfc.addr, ChangeIPPort) })
		wg.Go(func() { o.changePort, errPort = probeChange(ctx, c, rfc.addr, ChangePort) })
		wg.Wait()
		// Mapping tests II and III. Without a NAT the answer is known,
		// but they cost one round trip and show that the server works.
		other := rfc.res.Other
		wg.Go(func() { o.altIP, errII = probeMapping(ctx, c, netip.AddrPortFrom(other.Addr(), rfc.addr.Port())) })
		wg.Go(func() { o.altIPPort, errIII = probeMapping(ctx, c, other) })
		wg.Wait()
		note(errIPPort, errPort, errII, errIII)
	}

	d := decide(o)
	rep.NoNAT, rep.Mapping, rep.Filtering, rep.RFC5780 = d.noNAT, d.mapping, d.filtering, d.rfc5780
	if rep.Mapping == Unknown {
		problems = append(problems, "mapping needs an RFC 5780 server or two servers at different IPs")
	}
	if err := ctx.Err(); err != nil {
		return done(fmt.Errorf("classify: cut short: %w", err), problems)
	}
	c.log.Debug("classified NAT", "public", rep.PublicAddr, "mapping", rep.Mapping,
		"filtering", rep.Filtering, "rfc5780", rep.RFC5780, "took", time.Since(start))
	return done(nil, problems)
}

// probeServer resolves one server and runs test I against it.
func probeServer(ctx context.Context, c *STUNClient, name string, local netip.AddrPort) serverResult {
	ctx, cancel := context.WithTimeout(ctx, serverProbeTimeout)
	defer cancel()
	r := serverResult{name: name}
	r.addr, r.err = resolveServer(ctx, name, local)
	if r.err == nil {
		r.res, r.err = c.Binding(ctx, r.addr, NoChange)
	}
	if r.err != nil {
		r.err = fmt.Errorf("server %s: %w", name, r.err)
	}
	return r
}

// probeChange runs one filtering probe. The error explains failed and
// unsupported outcomes; a timeout of the probe's own short deadline is a
// result (noAnswer), not a problem.
func probeChange(parent context.Context, c *STUNClient, server netip.AddrPort, change ChangeRequest) (outcome, error) {
	ctx, cancel := context.WithTimeout(parent, filterProbeTimeout)
	defer cancel()
	res, err := c.Binding(ctx, server, change)
	var er *ErrorResponse
	switch {
	case err == nil:
		// A server that ignores CHANGE-REQUEST and answers from the
		// primary address would fake endpoint-independent filtering.
		from := res.From
		if !from.IsValid() {
			from = res.Origin
		}
		ipChanged := from.Addr() != server.Addr()
		if from.IsValid() && (from.Port() == server.Port() || (change == ChangeIPPort && !ipChanged)) {
			return unsupported, fmt.Errorf("%v asked to change %v answered from %v", server, change, from)
		}
		return answered, nil
	case errors.As(err, &er) && er.Code == codeUnknownAttribute:
		return unsupported, fmt.Errorf("%v does not support CHANGE-REQUEST: %w", server, err)
	case errors.Is(err, ErrSTUNTimeout) && parent.Err() == nil:
		return noAnswer, nil
	}
	return failed, fmt.Errorf("filtering probe: %w", err)
}

// probeMapping runs mapping test II or III; zero when unanswered.
func probeMapping(ctx context.Context, c *STUNClient, server netip.AddrPort) (netip.AddrPort, error) {
	ctx, cancel := context.WithTimeout(ctx, mappingProbeTimeout)
	defer cancel()
	res, err := c.Binding(ctx, server, NoChange)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("mapping test: %w", err)
	}
	return res.Mapped, nil
}
