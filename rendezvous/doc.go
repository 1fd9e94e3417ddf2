// Package rendezvous makes and reads the private record through which a
// node tells holders of its connection string where it can be reached,
// stored on the BitTorrent mainline DHT as a BEP 44 mutable item.
//
// It is pure: keys, bytes and time in, keys, bytes and errors out. Package
// dht carries the items.
//
// # What is published
//
// A Record holds the node's candidates (public addresses of each family,
// port-mapped addresses, relay allocations: at most MaxCandidates, never
// LAN addresses), a sequence number, the time it was made and flags (a
// hard NAT: FlagHardNAT). No name, no node ID. Its plaintext is a fixed
// 256 bytes (version, time, flags in v2, candidates, zero padding), so
// every record has the same size whatever it holds.
//
// # How
//
// Time is cut into periods, one per UTC day (Period). For node key a with
// public key A (the node ID) and period p:
//
//   - Blinded key (Tor rend-spec-v3 A.2): h = SHA-512("punchdrop blind v1"
//     ‖ A ‖ p) mod ℓ, A' = h·A. The node signs with a' = h·a mod ℓ and a
//     nonce prefix derived from its own, so its signatures verify under A'
//     with plain Ed25519 (BlindedSigner). Computing A' takes A; signing as
//     A' takes a.
//   - DHT target: BEP 44's SHA-1(A' ‖ salt) with an empty salt. A salt only
//     tells apart items under one key, and each A' has one item; any fixed
//     salt would be sent with every put and mark it as ours.
//   - Value: XChaCha20-Poly1305 under HKDF-SHA256(A, salt "punchdrop
//     rendezvous v1", info "record key" ‖ p), with a random 24-byte nonce
//     and A' and seq as additional data. 296 bytes, 300 bencoded, of the
//     1000 BEP 44 allows.
//   - Signature: BEP 44's, by A', over "3:seqi<seq>e1:v296:<value>".
//   - Sequence number: NextSeq, the Unix time in seconds or one above the
//     last used, whichever is higher. Storing nodes refuse a put with a
//     lower seq than the one they hold (BEP 44), and readers refuse a
//     record whose seq is not above the one they hold (ErrNotNewer).
//
// A reader that knows the node ID computes A' and the target for the
// period, gets the item, and opens it (Open): key is A', signature valid,
// value decrypts and decodes, time within MaxRecordAge before and
// MaxClockSkew after its clock, seq above what it holds.
//
// # Using it
//
// A publisher seals its record (Seal, with NextSeq) for PeriodOf(now) and
// puts it at once when its candidates change, at the start of each period,
// and every RepublishInterval otherwise. If a put reports that the DHT
// holds a higher seq (a clock that stepped back), it seals again above it.
// A reader that cannot reach a peer looks it up in both LookupPeriods,
// keeps the record with the highest seq that Open accepts, remembers that
// seq for the peer, and waits LookupBackoff(failures) before the next try.
// Behind a NAT, its DHT node is best read-only (package dht): it then
// answers nobody, and no routing table lists its address.
//
// # Threat model
//
// A DHT node that stores or relays the item, or anyone watching the
// unencrypted DHT traffic, sees A', the target, seq (a time), the
// signature, 296 bytes of ciphertext, and the source address of each put
// and get. Without the node ID it learns no candidate, not the node ID,
// and not which of its stored items belong to the same node on different
// days: A' of different periods, and A' and A, are unlinkable under the
// decisional Diffie-Hellman assumption, because h cannot be computed
// without A. What it does see: the IP address that puts (usually the same
// public IPv4 address as one of the candidates: the DHT socket leaves
// through the same NAT; the QUIC port, IPv6 and relay candidates stay
// hidden), the IP addresses that look the target up (so it can tell that
// those hosts know each other), and that an item with a 296-byte value and
// no salt is likely punchdrop's. The DHT's 20-byte node ID is random per
// DHT node start, and a host whose public IP address stays the same is
// linkable by that address anyway; restarting the DHT node each period
// keeps the DHT node ID from adding a link. A DHT node can also refuse to
// store or serve the item (so can any BEP 44 node); it cannot aim at one
// punchdrop node without knowing its ID, since the target moves every day.
//
// A holder of the connection string, or of an old one, knows A: it can
// compute the target of any period, past or future, and read every record
// published under this node key, for as long as the key is kept. The
// connection string is the capability; taking it back means a new node
// key. It cannot forge a record (that takes a), so it cannot redirect the
// node's peers; the session authenticates the peer by key in any case.
//
// Replay and rollback: a DHT node may serve an older authentic record of
// the same period. A reader keeps the highest seq it has opened per peer
// and refuses anything not above it; a reader holding nothing still
// refuses records older than MaxRecordAge, so a replay can point it at
// addresses at most a few hours old. Honest storing nodes keep only the
// highest seq (BEP 44), and a lookup keeps the highest seq among the
// answers.
//
// Daily rotation: a storing node can follow a fixed key's record for as
// long as it is republished; a new A' every day limits what one storing
// node sees of a node to one day, and a day is long enough that a lookup
// crosses a period boundary rarely. Both sides use UTC, and a reader looks
// in the current period and in the neighbouring one nearer to its clock
// (LookupPeriods), so clocks up to half a day apart, and a publisher that
// has not yet republished after midnight, still meet; the record's time
// check (MaxClockSkew) is what bounds the skew that is accepted.
package rendezvous
