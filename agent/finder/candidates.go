package finder

import (
	"net/netip"
	"slices"

	"github.com/punchdrop/punchdrop/rendezvous"
	"github.com/punchdrop/punchdrop/session"
)

// recordCandidates is what the node's record holds of its own candidates,
// best first: direct ones as Public, relay ones as Relay, at most
// rendezvous.MaxCandidates; LAN ones, addresses a record may not hold
// (private, loopback...) and repeats are left out.
func recordCandidates(own []session.Candidate) []rendezvous.Candidate {
	var out []rendezvous.Candidate
	for _, c := range own {
		var kind rendezvous.Kind
		switch c.Kind {
		case session.PathDirect, "":
			kind = rendezvous.Public
		case session.PathRelay:
			kind = rendezvous.Relay
		default:
			continue
		}
		a := netip.AddrPortFrom(c.Addr.Addr().Unmap(), c.Addr.Port())
		rc := rendezvous.Candidate{Kind: kind, Addr: a}
		if a.Port() == 0 || !rendezvous.UsableAddr(a.Addr()) || slices.Contains(out, rc) {
			continue
		}
		out = append(out, rc)
		if len(out) == rendezvous.MaxCandidates {
			break
		}
	}
	return out
}

// sessionCandidates is what a peer's record tells the node: its public
// and mapped addresses as direct paths, its relay ones as relay paths,
// all found on the DHT.
func sessionCandidates(rec rendezvous.Record) []session.Candidate {
	out := make([]session.Candidate, 0, len(rec.Candidates))
	for _, c := range rec.Candidates {
		kind := session.PathDirect
		if c.Kind == rendezvous.Relay {
			kind = session.PathRelay
		}
		out = append(out, session.Candidate{Addr: c.Addr, Kind: kind, Source: session.SourceDHT})
	}
	return out
}
