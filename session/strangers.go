package session

import (
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// strangerRequestInterval limits PeerRequest events per unknown node; its
// probes arrive five times a second and one event says all there is.
const strangerRequestInterval = 10 * time.Second

// maxStrangers bounds how many unknown nodes are remembered for rate
// limiting before the one heard from longest ago is forgotten.
const maxStrangers = 256

// sameNameMark is appended to the name a stranger gives itself when one
// of our peers has that name (case aside), so that its request cannot
// pass for that peer in a list, a notification or a command that takes a
// name. The marked name is still a valid name (CheckName).
const sameNameMark = " (same name as a peer)"

// admitProbe decides, before the costly signature check, whether a probe
// is looked at at all. A probe that claims to come from a peer (its ID is
// public, so the claim is unchecked here) is limited per source address,
// and also against all sources together unless it comes from an address
// we know for that peer; a stranger's probe per source and against all
// strangers together.
func (n *Node) admitProbe(b []byte, from netip.AddrPort) bool {
	src := from.Addr()
	p := n.claimedPeer(b)
	if p == nil {
		return n.limits.strangerSources.allow(src) && n.limits.strangers.Allow()
	}
	if !n.limits.peerSources.allow(src) {
		return false
	}
	return p.knowsIP(src) || n.limits.claimed.Allow()
}

// claimedPeer returns the configured peer that b says it comes from,
// without checking the signature, or nil.
func (n *Node) claimedPeer(b []byte) *peer {
	const fromOffset = 5 // probe.Probe.From on the wire
	if len(b) < fromOffset+NodeIDLen {
		return nil
	}
	return n.peer(NodeID(b[fromOffset : fromOffset+NodeIDLen]))
}

// knowsIP reports whether ip is among the addresses we know for the peer:
// its candidates, the addresses its probes came from, its session's.
func (p *peer) knowsIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sess != nil && p.sess.Path.Addr.Addr() == ip || p.paths.knowsIP(ip)
}

// strangerProbed turns a stranger's probe into a PeerRequest event, within
// limits: one per stranger per strangerRequestInterval, few new strangers
// per source address, and few events from all strangers together.
func (n *Node) strangerProbed(req PeerRequest) {
	if req.Name != "" && CheckName(req.Name) != nil {
		req.Name = ""
	}
	n.mu.Lock()
	req.Name = n.unclaimedNameLocked(req.Name)
	due := n.requestDueLocked(req, time.Now())
	n.mu.Unlock()
	if due && n.cfg.Events.PeerRequest != nil {
		n.cfg.Events.PeerRequest(req)
	}
}

// requestDueLocked reports whether req may be reported now, and if so
// notes that it was.
func (n *Node) requestDueLocked(req PeerRequest, now time.Time) bool {
	last, seen := n.requested.get(req.ID)
	switch {
	case seen && now.Sub(last) < strangerRequestInterval:
		return false
	case !seen && !n.limits.newKeys.allow(req.Addr.Addr()):
		return false
	case !n.limits.requests.AllowN(now, 1):
		return false
	}
	n.requested.put(req.ID, now)
	return true
}

// unclaimedNameLocked returns name, marked with sameNameMark if a peer is
// called so, or empty if even the marked name is a peer's.
func (n *Node) unclaimedNameLocked(name string) string {
	if name == "" || !n.peerNamedLocked(name) {
		return name
	}
	marked := truncateUTF8(name, MaxNameLen-len(sameNameMark)) + sameNameMark
	if n.peerNamedLocked(marked) {
		return ""
	}
	return marked
}

// peerNamedLocked reports whether a configured peer is called name, case
// aside (as commands resolve names).
func (n *Node) peerNamedLocked(name string) bool {
	for _, p := range n.peers {
		p.mu.Lock()
		same := strings.EqualFold(p.name, name)
		p.mu.Unlock()
		if same {
			return true
		}
	}
	return false
}

// truncateUTF8 cuts s to at most max bytes without splitting a character.
func truncateUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}
