// Package finder keeps a node findable on the BitTorrent mainline DHT and
// finds its peers there: it runs the node's DHT node, publishes the
// node's sealed rendezvous record, and looks up peers that cannot be
// reached at the addresses known for them.
//
// What a record holds, how it is sealed and what a DHT node can learn from
// it are package rendezvous's; package dht carries it. This package
// decides when.
//
// # The DHT node
//
// A Service runs one DHT node on a UDP socket of its own (the DHT's
// messages start with 'd', which QUIC's demultiplexer would take), always
// read-only (BEP 43): it asks and never answers. A read-only node is left
// out of every routing table, so the DHT does not list this host as one
// of its nodes; it answers no queries, so it costs nothing while idle but
// the pings of its own table's upkeep; and behind a NAT that filters
// (most of them), a full node could not be reached anyway and would only
// waste other nodes' timeouts. A host that wants to serve the DHT runs
// "punchdrop dht-node". The node joins through Config.Bootstrap only: this
// package never falls back to the public routers by itself.
//
// The DHT node is started afresh, with a new random DHT ID and a new
// port, at the start of every period (UTC day): the record's key changes
// each period so that storing nodes cannot link one day's record to the
// next, and a DHT ID kept across days would link them again.
//
// # Publishing
//
// The node's record holds its public candidates (kind direct, published
// as rendezvous.Public; a mapped port is one too) and its relay ones
// (rendezvous.Relay), never LAN ones. It is put at once when they change
// (Publish), at the start of each period, and every
// rendezvous.RepublishInterval otherwise; a failed put is tried again
// after publishRetryMin, doubling up to the republish interval. If the
// DHT holds a higher sequence number (this node's clock stepped back), the
// record is sealed again above it. A node with neither a public nor a
// relay candidate (no STUN answer and no relay allocation yet) publishes
// nothing, leaving its last record in place until it expires; one with a
// relay allocation but no STUN answer publishes the relayed address
// alone. The agent's port mapping (port_mapping) reaches the record as a
// direct candidate like any other, so it is published as
// rendezvous.Public: to a peer it is one more public address.
// rendezvous.PortMapped is read, for records that tell them apart.
//
// # Looking up
//
// A peer that has had no session for LookupAfter is looked up, in both
// periods around now (rendezvous.LookupPeriods), keeping the record with
// the highest sequence number that opens; again after
// rendezvous.LookupBackoff(n) for the n-th lookup in a row (plus up to a
// tenth of jitter), until a session comes up. A record counts only if its
// sequence number is above the highest the owner holds for the peer
// (Config.Held): a replayed or rolled-back record is refused, across
// restarts since the owner keeps that number durably. What a record holds
// goes to Config.Found; each peer's last lookup, in words, to PeerLookup.
package finder
