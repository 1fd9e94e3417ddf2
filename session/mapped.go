package session

import (
	"net/netip"

	"github.com/punchdrop/punchdrop/nat"
)

// mappedProvider names the node's port mapping among its own candidates
// (SetExtraCandidates).
const mappedProvider = "portmap"

// SetMapped offers addr, a public address the router forwards to the
// node's UDP socket (a port mapping by PCP, NAT-PMP or UPnP), to peers as
// a direct candidate; a zero addr withdraws it. Behind a NAT whose
// mapping STUN found to depend on the destination (symmetric) or could
// not classify, the connection string carries it as the public address:
// the one STUN saw is of no use to another peer there.
func (n *Node) SetMapped(addr netip.AddrPort) {
	var cands []Candidate
	if addr.IsValid() {
		cands = []Candidate{{Addr: addr, Kind: PathDirect}}
	}
	n.SetExtraCandidates(mappedProvider, cands)
	n.wakeAll() // peers still punching try the new address at once
}

// mappedLocked is the node's port mapping, if it has one.
func (n *Node) mappedLocked() netip.AddrPort {
	if cands := n.extra[mappedProvider]; len(cands) > 0 {
		return cands[0].Addr
	}
	return netip.AddrPort{}
}

// publicForPeersLocked is the public address a connection string names:
// STUN's, unless the NAT maps per destination (or is not known) and the
// router mapped a port, which peers can reach from anywhere.
func (n *Node) publicForPeersLocked() netip.AddrPort {
	pub, mapped := n.report.PublicAddr, n.mappedLocked()
	if mapped.IsValid() && (!pub.IsValid() || n.report.Mapping != nat.EndpointIndependent) {
		return mapped
	}
	return pub
}
