package nat

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
)

func testKey(t testing.TB, seed byte) (ed25519.PrivateKey, [keyLen]byte) {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	priv := ed25519.NewKeyFromSeed(s)
	var pub [keyLen]byte
	copy(pub[:], priv.Public().(ed25519.PublicKey))
	return priv, pub
}

func TestProbeRoundTrip(t *testing.T) {
	key, from := testKey(t, 1)
	_, to := testKey(t, 2)
	for _, name := range []string{"", "alice", "Zoë", strings.Repeat("x", MaxProbeName)} {
		for _, typ := range []ProbeType{ProbeRequest, ProbeAck} {
			want := Probe{Type: typ, From: from, To: to, Nonce: 0xdeadbeef01, Name: name}
			b, err := want.Marshal(key)
			if err != nil {
				t.Fatal(err)
			}
			if !IsProbe(b) || b[0] >= 0x40 || b[0] <= 0x01 {
				t.Fatalf("probe must start below 0x40 and above STUN's 0x00/0x01, got %#x", b[0])
			}
			got, err := ParseProbe(b)
			if err != nil {
				t.Fatalf("ParseProbe(%q, %v): %v", name, typ, err)
			}
			if got != want {
				t.Fatalf("round trip: got %+v, want %+v", got, want)
			}
		}
	}
}

func TestProbeRejects(t *testing.T) {
	key, from := testKey(t, 1)
	otherKey, _ := testKey(t, 3)
	_, to := testKey(t, 2)
	good, err := Probe{Type: ProbeRequest, From: from, To: to, Nonce: 7, Name: "bob"}.Marshal(key)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := Probe{Type: ProbeRequest, From: from, To: to, Nonce: 7, Name: "bob"}.Marshal(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(i int, v byte) []byte {
		b := append([]byte(nil), good...)
		b[i] = v
		return b
	}
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"magic only", probeMagic[:]},
		{"truncated", good[:len(good)-1]},
		{"extra byte", append(append([]byte(nil), good...), 0)},
		{"oversized", make([]byte, MaxProbeLen+1)},
		{"wrong magic", mutate(1, 'X')},
		{"unknown type", mutate(4, 9)},
		{"name length past end", mutate(77, 200)},
		{"name length short", mutate(77, 1)},
		{"flipped nonce", mutate(70, good[70]^1)},
		{"signed by another key", forged},
		{"bad signature", mutate(len(good)-1, good[len(good)-1]^0xff)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseProbe(tc.in); !errors.Is(err, ErrBadProbe) {
				t.Fatalf("ParseProbe = %v, want ErrBadProbe", err)
			}
		})
	}
	if _, err := (Probe{Name: strings.Repeat("x", MaxProbeName+1)}).Marshal(key); err == nil {
		t.Fatal("Marshal accepted an over-long name")
	}
}

func FuzzParseProbe(f *testing.F) {
	key, from := testKey(f, 1)
	_, to := testKey(f, 2)
	good, _ := Probe{Type: ProbeAck, From: from, To: to, Nonce: 1, Name: "fuzz"}.Marshal(key)
	f.Add(good)
	f.Add(good[:40])
	f.Add([]byte{})
	f.Add(probeMagic[:])
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProbe(b)
		if err != nil {
			return
		}
		// Whatever parses was signed by its sender, so only an exact
		// copy of a signed probe can parse.
		if len(b) != probeHeaderLen+len(p.Name)+probeSigLen || len(p.Name) > MaxProbeName {
			t.Fatalf("parsed %d bytes into a probe with a %d-byte name", len(b), len(p.Name))
		}
	})
}
