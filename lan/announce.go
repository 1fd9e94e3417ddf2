package lan

import (
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/punchdrop/punchdrop/session"
)

// Sizes of an announcement (see the package doc).
const (
	formatVersion = 1
	// MaxAnnounced bounds the addresses an announcement lists: as many
	// LAN candidates as a node has (session.MaxLANCandidates).
	MaxAnnounced = session.MaxLANCandidates
	// bodySize is the signed part of the plaintext: time, count and
	// MaxAnnounced IPv6 addresses with ports (161 bytes), rounded up.
	bodySize  = 192
	plainSize = bodySize + ed25519.SignatureSize
	// AnnouncementSize is the size of every announcement on the wire.
	AnnouncementSize = 1 + chacha20poly1305.NonceSizeX + plainSize + chacha20poly1305.Overhead
)

// Derivation and domain-separation strings.
const (
	keySalt    = "punchdrop lan v1"
	keyInfo    = "announcement key"
	sealAD     = "punchdrop lan v1"
	signDomain = "punchdrop lan announce v1"
)

// Errors of Open.
var (
	// ErrNotAnnouncement is returned for a datagram that is not an
	// announcement of this version.
	ErrNotAnnouncement = errors.New("not a punchdrop LAN announcement")
	// ErrNotPeer is returned for an announcement no key of the peers
	// given opens: a stranger's, or junk.
	ErrNotPeer = errors.New("announcement from no peer")
	// ErrBadAnnouncement is returned for an announcement that opens but
	// is not valid: a bad signature or a malformed body.
	ErrBadAnnouncement = errors.New("malformed LAN announcement")
)

// Announcement is what a node says on the LAN.
type Announcement struct {
	// Time is when it was made, to the millisecond; each of a node's
	// announcements has a later one than the last.
	Time time.Time
	// Addrs are the node's LAN addresses with its QUIC port.
	Addrs []netip.AddrPort
}

// PeerKey opens the announcements of one peer.
type PeerKey struct {
	ID   session.NodeID
	aead cipher.AEAD
}

// NewPeerKey derives the key that opens id's announcements.
func NewPeerKey(id session.NodeID) (PeerKey, error) {
	aead, err := announcementAEAD(id)
	return PeerKey{ID: id, aead: aead}, err
}

// announcementAEAD is XChaCha20-Poly1305 under id's announcement key.
func announcementAEAD(id session.NodeID) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, id[:], []byte(keySalt), keyInfo, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive announcement key: %w", err)
	}
	return chacha20poly1305.NewX(key)
}

// Seal makes the datagram that announces a, signed with priv and readable
// by holders of priv's node ID. It lists the first MaxAnnounced addresses
// a peer could use (see usable), and leaves the others out.
func Seal(priv ed25519.PrivateKey, a Announcement) ([]byte, error) {
	return seal(priv, a, rand.Reader)
}

func seal(priv ed25519.PrivateKey, a Announcement, random io.Reader) ([]byte, error) {
	id, err := session.NodeIDFromKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	aead, err := announcementAEAD(id)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, AnnouncementSize)
	out[0] = formatVersion
	nonce := out[1:]
	if _, err := io.ReadFull(random, nonce); err != nil {
		return nil, fmt.Errorf("announcement nonce: %w", err)
	}
	plain := encodeBody(a)
	plain = append(plain, ed25519.Sign(priv, signedBytes(nonce, plain))...)
	return aead.Seal(out, nonce, plain, additionalData()), nil
}

// additionalData binds the ciphertext to this format.
func additionalData() []byte { return append([]byte(sealAD), formatVersion) }

// signedBytes is what the signature covers.
func signedBytes(nonce, body []byte) []byte {
	b := make([]byte, 0, len(signDomain)+len(nonce)+len(body))
	return append(append(append(b, signDomain...), nonce...), body...)
}

// encodeBody is the signed part of the plaintext, padded to bodySize.
func encodeBody(a Announcement) []byte {
	b := make([]byte, 0, bodySize)
	b = binary.BigEndian.AppendUint64(b, uint64(a.Time.UnixMilli()))
	var addrs []netip.AddrPort
	for _, ap := range a.Addrs {
		ap = netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
		if usable(ap) && len(addrs) < MaxAnnounced {
			addrs = append(addrs, ap)
		}
	}
	b = append(b, byte(len(addrs)))
	for _, ap := range addrs {
		ip := ap.Addr()
		if ip.Is4() {
			b = append(b, 4)
		} else {
			b = append(b, 6)
		}
		b = append(b, ip.AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, ap.Port())
	}
	return append(b, make([]byte, bodySize-len(b))...)
}

// Open reads an announcement made by one of peers. It refuses, saying
// why, a datagram of the wrong size or version (ErrNotAnnouncement), one
// no peer's key opens (ErrNotPeer), and one whose signature or body is
// bad (ErrBadAnnouncement). It checks neither the time nor replays: the
// caller does. It never panics, whatever b holds.
func Open(b []byte, peers []PeerKey) (session.NodeID, Announcement, error) {
	if len(b) != AnnouncementSize || b[0] != formatVersion {
		return session.NodeID{}, Announcement{}, ErrNotAnnouncement
	}
	nonce, sealed := b[1:1+chacha20poly1305.NonceSizeX], b[1+chacha20poly1305.NonceSizeX:]
	plain := make([]byte, 0, plainSize)
	for _, p := range peers {
		opened, err := p.aead.Open(plain, nonce, sealed, additionalData())
		if err != nil {
			continue
		}
		body, sig := opened[:bodySize], opened[bodySize:]
		if !ed25519.Verify(p.ID[:], signedBytes(nonce, body), sig) {
			return p.ID, Announcement{}, fmt.Errorf("%w: signature does not verify", ErrBadAnnouncement)
		}
		a, err := decodeBody(body)
		return p.ID, a, err
	}
	return session.NodeID{}, Announcement{}, ErrNotPeer
}

// decodeBody parses what encodeBody made, and refuses anything else.
func decodeBody(b []byte) (Announcement, error) {
	var a Announcement
	ms := int64(binary.BigEndian.Uint64(b[:8]))
	if ms <= 0 {
		return a, fmt.Errorf("%w: time %d", ErrBadAnnouncement, ms)
	}
	a.Time = time.UnixMilli(ms).UTC()
	n := int(b[8])
	if n > MaxAnnounced {
		return a, fmt.Errorf("%w: %d addresses", ErrBadAnnouncement, n)
	}
	rest := b[9:]
	for range n {
		if len(rest) < 1 {
			return Announcement{}, fmt.Errorf("%w: truncated", ErrBadAnnouncement)
		}
		size := 0
		switch rest[0] {
		case 4:
			size = 4
		case 6:
			size = 16
		default:
			return Announcement{}, fmt.Errorf("%w: family %d", ErrBadAnnouncement, rest[0])
		}
		if len(rest) < 1+size+2 {
			return Announcement{}, fmt.Errorf("%w: truncated", ErrBadAnnouncement)
		}
		ip, _ := netip.AddrFromSlice(rest[1 : 1+size])
		ap := netip.AddrPortFrom(ip, binary.BigEndian.Uint16(rest[1+size:]))
		if !usable(ap) {
			return Announcement{}, fmt.Errorf("%w: address %s", ErrBadAnnouncement, ap)
		}
		a.Addrs = append(a.Addrs, ap)
		rest = rest[1+size+2:]
	}
	for _, x := range rest {
		if x != 0 {
			return Announcement{}, fmt.Errorf("%w: padding is not zero", ErrBadAnnouncement)
		}
	}
	return a, nil
}

// usable reports whether a peer on the LAN may be reached at a: a port,
// and a unicast address that is not loopback, unspecified or
// IPv4-mapped, nor an IPv6 link-local one (which means nothing without
// the interface it is on).
func usable(a netip.AddrPort) bool {
	ip := a.Addr()
	return a.Port() != 0 && !ip.Is4In6() && !ip.IsUnspecified() && !ip.IsLoopback() && !ip.IsMulticast() &&
		!(ip.Is6() && ip.IsLinkLocalUnicast())
}
