package rendezvous

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"filippo.io/edwards25519"
)

// testKey returns a fixed node key made from one byte, so failures repeat.
func testKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

func pubOf(priv ed25519.PrivateKey) ed25519.PublicKey {
	return priv.Public().(ed25519.PublicKey)
}

// TestBlindedSignature checks that what a BlindedSigner signs verifies
// under A' (computed from the public key alone) and under nothing else.
func TestBlindedSignature(t *testing.T) {
	msg := []byte("3:seqi1e1:v5:hello")
	for _, tc := range []struct {
		name   string
		key    byte
		period Period
	}{
		{"epoch", 1, 0},
		{"a day in 2026", 1, 20600},
		{"the next day", 1, 20601},
		{"another key", 2, 20600},
		{"far future", 3, 1 << 40},
		{"before 1970", 4, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			priv := testKey(tc.key)
			signer, err := NewBlindedSigner(priv, tc.period)
			if err != nil {
				t.Fatal(err)
			}
			blinded, err := BlindPublicKey(pubOf(priv), tc.period)
			if err != nil {
				t.Fatal(err)
			}
			if signer.Public() != blinded {
				t.Fatalf("signer's A' %x differs from A' computed from the ID %x", signer.Public(), blinded)
			}
			sig := signer.Sign(msg)
			if !ed25519.Verify(blinded[:], msg, sig[:]) {
				t.Error("signature does not verify under A'")
			}
			if ed25519.Verify(pubOf(priv), msg, sig[:]) {
				t.Error("signature verifies under the unblinded key A")
			}
			other, _ := BlindPublicKey(pubOf(priv), tc.period+1)
			if ed25519.Verify(other[:], msg, sig[:]) {
				t.Error("signature verifies under the next period's A'")
			}
			if ed25519.Verify(blinded[:], append(msg, '!'), sig[:]) {
				t.Error("signature verifies for another message")
			}
			if again := signer.Sign(msg); again != sig {
				t.Error("signing is not deterministic")
			}
		})
	}
}

// TestBlindedKeysUnrelated checks that A' differs per day and per key, is
// never A, and never repeats over a year of days and a few keys.
func TestBlindedKeysUnrelated(t *testing.T) {
	seen := map[BlindedKey]string{}
	for k := byte(1); k <= 4; k++ {
		pub := pubOf(testKey(k))
		for p := Period(20000); p < 20000+366; p++ {
			b, err := BlindPublicKey(pub, p)
			if err != nil {
				t.Fatal(err)
			}
			where := fmt.Sprintf("key %d period %d", k, p)
			if bytes.Equal(b[:], pub) {
				t.Fatalf("%s: A' is A", where)
			}
			if prev, ok := seen[b]; ok {
				t.Fatalf("A' of %s repeats that of %s", where, prev)
			}
			seen[b] = where
		}
	}
}

// TestBlindedSignerIsEd25519 checks the signing code itself: with the
// key's own scalar and prefix (no blinding) it must produce exactly what
// crypto/ed25519 produces.
func TestBlindedSignerIsEd25519(t *testing.T) {
	priv := testKey(7)
	digest := sha512.Sum512(priv.Seed())
	a, err := edwards25519.NewScalar().SetBytesWithClamping(digest[:32])
	if err != nil {
		t.Fatal(err)
	}
	s := &BlindedSigner{scalar: a}
	copy(s.pub[:], pubOf(priv))
	copy(s.prefix[:], digest[32:])
	for _, msg := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("punchdrop"), 100)} {
		got := s.Sign(msg)
		if want := ed25519.Sign(priv, msg); !bytes.Equal(got[:], want) {
			t.Errorf("message of %d bytes: signature %x, crypto/ed25519 says %x", len(msg), got, want)
		}
	}
}

func TestBlindPublicKeyRefuses(t *testing.T) {
	identity := make([]byte, 32)
	identity[0] = 1            // y = 1: the neutral element
	order4 := make([]byte, 32) // y = 0: a point of order 4
	notOnCurve, _ := hex.DecodeString("0200000000000000000000000000000000000000000000000000000000000000")
	if _, err := new(edwards25519.Point).SetBytes(notOnCurve); err == nil {
		t.Fatal("test vector for 'not on the curve' is on the curve")
	}
	for _, tc := range []struct {
		name string
		pub  []byte
	}{
		{"empty", nil},
		{"short", make([]byte, 31)},
		{"long", make([]byte, 33)},
		{"identity", identity},
		{"order 4", order4},
		{"not on the curve", notOnCurve},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := BlindPublicKey(tc.pub, 20600); !errors.Is(err, ErrBadKey) {
				t.Errorf("error %v, want ErrBadKey", err)
			}
		})
	}
}

func TestNewBlindedSignerRefusesShortKey(t *testing.T) {
	if _, err := NewBlindedSigner(make([]byte, 32), 1); err == nil {
		t.Error("a 32-byte private key was accepted")
	}
}
