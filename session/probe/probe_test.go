package probe

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
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

// probeTime is a fixed probe time, to the millisecond as on the wire.
var probeTime = time.UnixMilli(1_800_000_000_123)

func TestProbeRoundTrip(t *testing.T) {
	key, from := testKey(t, 1)
	_, to := testKey(t, 2)
	for _, name := range []string{"", "alice", "Zoë", strings.Repeat("x", MaxName)} {
		for _, typ := range []Type{Request, Ack} {
			want := Probe{Type: typ, From: from, To: to, Nonce: 0xdeadbeef01, Time: probeTime, Name: name}
			b, err := want.Marshal(key)
			if err != nil {
				t.Fatal(err)
			}
			if !Is(b) || b[0] >= 0x40 || b[0] <= 0x01 {
				t.Fatalf("probe must start below 0x40 and above STUN's 0x00/0x01, got %#x", b[0])
			}
			got, err := Parse(b)
			if err != nil {
				t.Fatalf("Parse(%q, %v): %v", name, typ, err)
			}
			if !got.Time.Equal(want.Time) {
				t.Fatalf("round trip: time %s, want %s", got.Time, want.Time)
			}
			got.Time = want.Time
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
	good, err := Probe{Type: Request, From: from, To: to, Nonce: 7, Time: probeTime, Name: "bob"}.Marshal(key)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := Probe{Type: Request, From: from, To: to, Nonce: 7, Time: probeTime, Name: "bob"}.Marshal(otherKey)
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
		{"magic only", probeMarker[:]},
		{"version 1", version1Probe(t, key, from, to)},
		{"version 3", mutate(offVersion, 3)},
		{"truncated", good[:len(good)-1]},
		{"extra byte", append(append([]byte(nil), good...), 0)},
		{"oversized", make([]byte, MaxLen+1)},
		{"wrong magic", mutate(1, 'X')},
		{"unknown type", mutate(4, 9)},
		{"name length past end", mutate(offNameLen, 200)},
		{"name length short", mutate(offNameLen, 1)},
		{"flipped nonce", mutate(offNonce+1, good[offNonce+1]^1)},
		{"flipped time", mutate(offTime+7, good[offTime+7]^1)},
		{"signed by another key", forged},
		{"bad signature", mutate(len(good)-1, good[len(good)-1]^0xff)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Parse(tc.in); !errors.Is(err, ErrBad) {
				t.Fatalf("Parse = %v, want ErrBad", err)
			}
		})
	}
	if _, err := (Probe{Time: probeTime, Name: strings.Repeat("x", MaxName+1)}).Marshal(key); err == nil {
		t.Fatal("Marshal accepted an over-long name")
	}
	if _, err := (Probe{Name: "bob"}).Marshal(key); err == nil {
		t.Fatal("Marshal accepted a probe without a time")
	}
}

func TestClaimedSender(t *testing.T) {
	key, from := testKey(t, 1)
	_, to := testKey(t, 2)
	b, err := Probe{Type: Request, From: from, To: to, Time: probeTime}.Marshal(key)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1 // a bad signature: the claim is read all the same
	if got, ok := ClaimedSender(b); !ok || got != from {
		t.Fatalf("ClaimedSender = %x, %v; want %x", got, ok, from)
	}
	for _, short := range [][]byte{nil, b[:offFrom+keyLen-1], append([]byte{0x20}, b[1:]...)} {
		if _, ok := ClaimedSender(short); ok {
			t.Fatalf("ClaimedSender(%x) claims a sender", short)
		}
	}
}

// version1Probe is a correctly signed probe in the old format, which had
// no time field: the name length sat at offset 77.
func version1Probe(t testing.TB, key ed25519.PrivateKey, from, to [keyLen]byte) []byte {
	t.Helper()
	b := []byte{0x1f, 'P', 'D', 0x01, byte(Request)}
	b = append(b, from[:]...)
	b = append(b, to[:]...)
	b = binary.BigEndian.AppendUint64(b, 7)
	b = append(b, 3)
	b = append(b, "bob"...)
	return append(b, ed25519.Sign(key, b)...)
}

func FuzzParse(f *testing.F) {
	key, from := testKey(f, 1)
	_, to := testKey(f, 2)
	good, _ := Probe{Type: Ack, From: from, To: to, Nonce: 1, Time: probeTime, Name: "fuzz"}.Marshal(key)
	f.Add(good)
	f.Add(good[:40])
	f.Add([]byte{})
	f.Add(probeMarker[:])
	f.Add(version1Probe(f, key, from, to))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		// Whatever parses was signed by its sender, so only an exact
		// copy of a signed probe can parse.
		if len(b) != probeHeaderLen+len(p.Name)+probeSigLen || len(p.Name) > MaxName {
			t.Fatalf("parsed %d bytes into a probe with a %d-byte name", len(b), len(p.Name))
		}
		if from, ok := ClaimedSender(b); !ok || from != p.From {
			t.Fatalf("ClaimedSender = %x, %v; the probe is from %x", from, ok, p.From)
		}
		if b[offVersion] != Version || p.Time.UnixMilli() != int64(binary.BigEndian.Uint64(b[offTime:])) {
			t.Fatalf("parsed version %d, time %s from %x", b[offVersion], p.Time, b)
		}
	})
}
