// Package session holds a node's identity, connection strings, and the
// authenticated QUIC sessions between peers.
//
// A Node runs on one socket, handed in as a net.PacketConn (ListenUDP
// opens a real one; package simnet makes simulated ones). quic-go takes the
// QUIC datagrams; the node's one reader sorts the rest (node.go): STUN
// answers to the NAT discovery (local.go), punch probes (probes.go, the
// wire format in package probe).
//
// A peer is a key with a set of candidate paths (path.go), each of a kind
// (lan, direct, later relay) with a priority, lower being better, and the
// round trip its last probe took. The peer's loop (punch.go) probes them
// all, the node with the smaller ID dials the best that answered, and the
// session that results (session.go) carries messages and transfer streams
// (stream.go). While a session runs on a worse path, the dialer still
// probes the better candidates now and then, and once one answers it makes
// a new session there, which replaces the old: what ran on the old one (a
// transfer) fails and is resumed by its owner on the new one.
//
// A peer's candidates come from its connection string, from where its
// probes come from, and from its owner (AddCandidates: the DHT, the LAN).
// Connected peers also tell each other their own candidates at the start
// of each session and whenever they change (gossip.go).
package session
