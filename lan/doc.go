// Package lan finds a node's peers on its local network, with no
// internet at all: each node announces its LAN addresses by multicast
// every few seconds and at once when they change, and hears its peers'
// announcements. Only holders of the announcer's node ID can read an
// announcement, and only the announcer's key can make one.
//
// # Where announcements go
//
// To UDP port Port (24680) of the groups Group4 (239.255.112.100) and
// Group6 (ff12::7064), on every up, multicast-capable interface, with a
// TTL (hop limit) of 1, from a socket of the package's own bound to Port:
//
//   - 239.255.0.0/16 is the IPv4 Local Scope (RFC 2365), for groups
//     assigned locally with no IANA entry; with a TTL of 1 no router
//     forwards them anyway. ff12::/16 is IPv6 link-local scope with the
//     transient flag (RFC 4291), likewise needing no assignment. Joining
//     sends IGMP/MLD reports, so switches that snoop deliver them to every
//     host that listens.
//   - Both families go out: some networks (guest Wi-Fi, some access
//     points) drop one of them. An announcement lists the node's IPv4
//     LAN addresses whichever family carries it, since the node's QUIC
//     socket is IPv4.
//   - A fixed port, the same for every node, outside the ephemeral range
//     that nodes' own sockets use. The socket sets SO_REUSEADDR (and
//     SO_REUSEPORT where it exists), so several agents of one host, each
//     with its own home, all hear every announcement.
//
// # What an announcement is
//
// One datagram of exactly AnnouncementSize (297) bytes:
//
//	version     1 byte    formatVersion
//	nonce      24 bytes   random, new for each announcement
//	sealed    272 bytes   XChaCha20-Poly1305 of the 256-byte plaintext,
//	                      additional data "punchdrop lan v1" ‖ version
//
// and the plaintext:
//
//	time        8 bytes   Unix milliseconds, big-endian; rises strictly
//	count       1 byte    at most MaxAnnounced
//	count ×     family (1 byte: 4 or 6), address (4 or 16), port (2)
//	padding     zeros up to 192 bytes
//	signature  64 bytes   Ed25519 by the node key over "punchdrop lan
//	                      announce v1" ‖ nonce ‖ the 192 bytes before it
//
// The AEAD key is HKDF-SHA256 of the node ID (salt "punchdrop lan v1",
// info "announcement key"): every holder of the ID has it. A listener
// tries the key of each of its peers (one Poly1305 check over 272 bytes
// each, about a microsecond); the one that opens names the announcer,
// whose signature then must verify under that peer's key.
//
// # What it reveals, and to whom
//
// To a host on the LAN that does not hold the node ID: that some host,
// at the datagram's source address, runs punchdrop (a 297-byte datagram
// to this group and port every few seconds). Not the node ID, not its
// name, not its addresses beyond the source the datagram comes from:
// the rest is ciphertext under a key it cannot derive, of one size
// whatever it holds, with a fresh nonce each time, so two announcements
// share no bytes by which to link them but that source address.
//
// To a holder of the node ID (a peer, or anyone given the connection
// string): the node's LAN addresses and QUIC port, most of which the
// connection string carries anyway. It cannot forge an announcement (that
// takes the node key), so one peer cannot point another at a host of its
// choosing.
//
// Replay: an announcement counts only within MaxSkew of the listener's
// clock and only if its time is above the last one taken from that peer;
// a copy played back later, or from elsewhere, is refused, and one
// played back at once tells the listener the truth of two minutes ago.
// The source address of a datagram is never used: only the signed
// addresses inside.
//
// # Bounds
//
// Datagrams that are not exactly AnnouncementSize bytes are dropped before
// any cryptography; the rest are rate-limited per source address and
// overall before any key is tried. A listener reports a peer's addresses
// to its owner only when they change.
package lan
