package rendezvous

import (
	"crypto/ed25519"
	"crypto/sha512"
	"errors"
	"fmt"

	"filippo.io/edwards25519"
)

// Domain-separation strings: each hash below starts with its own, so no
// value computed here can be mistaken for another, or for anyone else's use
// of the same key.
const (
	blindDomain = "punchdrop blind v1"
	nonceDomain = "punchdrop blind nonce v1"
)

// ErrBadKey is returned when a public key is not a usable Ed25519 key: the
// wrong length, not a point on the curve, or of small order (a key a
// signature can be forged for).
var ErrBadKey = errors.New("not a usable Ed25519 public key")

// BlindedKey is a node key blinded for one period: an ordinary Ed25519
// public key, A' = h·A, that crypto/ed25519.Verify accepts signatures
// under. It is the "k" of the node's BEP 44 item that day.
type BlindedKey [ed25519.PublicKeySize]byte

// blindingFactor is h = SHA-512(blindDomain ‖ A ‖ period) reduced mod ℓ.
// A is hashed in so that h, and with it A', is unknowable without A: were
// h a function of the period alone, A'(q) = h(q)/h(p) · A'(p) would link
// the days. The 64-byte digest is reduced as a whole (wide reduction), which
// makes h uniform mod ℓ; Tor clamps a 32-byte digest instead, which for keys
// in the prime-order subgroup (every key crypto/ed25519 makes) only costs
// five bits.
func blindingFactor(pub []byte, p Period) *edwards25519.Scalar {
	return hashToScalar([]byte(blindDomain), pub, p.bytes())
}

// hashToScalar is SHA-512 of the concatenated parts, reduced mod ℓ.
func hashToScalar(parts ...[]byte) *edwards25519.Scalar {
	h := sha512.New()
	for _, part := range parts {
		h.Write(part)
	}
	s, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	if err != nil {
		// SetUniformBytes fails only for input that is not 64 bytes long.
		panic("rendezvous: SHA-512 digest is not 64 bytes")
	}
	return s
}

// BlindPublicKey returns A' for the node key pub in period p. Anyone who
// knows the node ID can compute it; nobody can tell it belongs to that ID,
// or to another day's A', without the ID.
func BlindPublicKey(pub ed25519.PublicKey, p Period) (BlindedKey, error) {
	if len(pub) != ed25519.PublicKeySize {
		return BlindedKey{}, fmt.Errorf("%w: %d bytes", ErrBadKey, len(pub))
	}
	a, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return BlindedKey{}, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	if new(edwards25519.Point).MultByCofactor(a).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return BlindedKey{}, fmt.Errorf("%w: small order", ErrBadKey)
	}
	var out BlindedKey
	copy(out[:], new(edwards25519.Point).ScalarMult(blindingFactor(pub, p), a).Bytes())
	return out, nil
}

// BlindedSigner signs as the blinded key of one period. It holds
// a' = h·a mod ℓ and a nonce prefix derived from the node key's; only the
// node key's holder can make one.
type BlindedSigner struct {
	pub    BlindedKey
	scalar *edwards25519.Scalar
	prefix [32]byte
}

// NewBlindedSigner blinds the node key priv for period p (rend-spec-v3
// A.2): a' = h·a, prefix' = SHA-512(nonceDomain ‖ prefix ‖ h)[:32], where a
// and prefix are the two halves of SHA-512(seed) that Ed25519 signs with.
func NewBlindedSigner(priv ed25519.PrivateKey, p Period) (*BlindedSigner, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("blind key: private key is %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	seed := priv.Seed()
	digest := sha512.Sum512(seed)
	a, err := edwards25519.NewScalar().SetBytesWithClamping(digest[:32])
	if err != nil {
		return nil, fmt.Errorf("blind key: %w", err) // unreachable: 32 bytes
	}
	// The public half comes from the seed, not from priv[32:], so a key
	// whose halves disagree cannot make a signer for someone else's ID.
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	h := blindingFactor(pub, p)
	s := &BlindedSigner{scalar: edwards25519.NewScalar().Multiply(h, a)}
	copy(s.pub[:], new(edwards25519.Point).ScalarBaseMult(s.scalar).Bytes())
	nh := sha512.New()
	nh.Write([]byte(nonceDomain))
	nh.Write(digest[32:])
	nh.Write(h.Bytes())
	copy(s.prefix[:], nh.Sum(nil))
	return s, nil
}

// Public returns A', the key the signatures verify under.
func (s *BlindedSigner) Public() BlindedKey { return s.pub }

// Sign signs msg as Ed25519 does (RFC 8032 5.1.6), with a' and prefix' in
// place of the key's own scalar and prefix: deterministic, and verified by
// crypto/ed25519.Verify under A'.
func (s *BlindedSigner) Sign(msg []byte) [ed25519.SignatureSize]byte {
	r := hashToScalar(s.prefix[:], msg)
	bigR := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
	k := hashToScalar(bigR, s.pub[:], msg)
	var sig [ed25519.SignatureSize]byte
	copy(sig[:32], bigR)
	copy(sig[32:], edwards25519.NewScalar().MultiplyAdd(k, s.scalar, r).Bytes())
	return sig
}
