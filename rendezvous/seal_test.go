package rendezvous

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testRecord is a typical record at testTime.
func testRecord(seq int64) Record {
	return Record{Seq: seq, Time: testTime, Candidates: []Candidate{
		cand(Public, "203.0.113.7:41641"),
		cand(Public, "[2001:db8::7]:41641"),
		cand(PortMapped, "203.0.113.7:5000"),
		cand(Relay, "198.51.100.3:49152"),
	}}
}

// zeroReader reads zeros: a fixed nonce, for deterministic items.
type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) { clear(b); return len(b), nil }

func mustSeal(t testing.TB, priv ed25519.PrivateKey, p Period, rec Record) Item {
	t.Helper()
	it, err := Seal(priv, p, rec)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func TestSealOpen(t *testing.T) {
	priv := testKey(1)
	p := PeriodOf(testTime)
	for _, rec := range []Record{testRecord(1), testRecord(testTime.Unix()), fullRecord(), {Seq: 5, Time: testTime}} {
		it := mustSeal(t, priv, p, rec)
		if len(it.Value) != ValueSize || len(it.Salt) != 0 {
			t.Fatalf("value %d bytes, salt %d bytes", len(it.Value), len(it.Salt))
		}
		if err := it.Check(); err != nil {
			t.Fatal(err)
		}
		got, err := Open(pubOf(priv), p, it, testTime, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, rec) {
			t.Errorf("opened %+v, want %+v", got, rec)
		}
	}
}

// TestItemSize checks the BEP 44 limit with the biggest record, and that
// every record's value has one size whatever it holds.
func TestItemSize(t *testing.T) {
	small := mustSeal(t, testKey(1), 1, Record{Seq: 1, Time: testTime})
	big := mustSeal(t, testKey(1), 1, fullRecord())
	if len(small.Value) != len(big.Value) {
		t.Errorf("values of %d and %d bytes: the size tells how many candidates", len(small.Value), len(big.Value))
	}
	if n := len(big.EncodedValue()); n > MaxEncodedValueSize || n != 300 {
		t.Errorf("bencoded value is %d bytes, want 300 (at most %d)", n, MaxEncodedValueSize)
	}
}

func TestSealDeterministicWithNonce(t *testing.T) {
	a, err := seal(testKey(1), 20600, testRecord(9), zeroReader{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := seal(testKey(1), 20600, testRecord(9), zeroReader{})
	if !reflect.DeepEqual(a, b) {
		t.Error("the same record and nonce gave two items")
	}
	c := mustSeal(t, testKey(1), 20600, testRecord(9))
	if bytes.Equal(a.Value, c.Value) {
		t.Error("Seal did not draw a random nonce")
	}
}

func TestSealRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		priv ed25519.PrivateKey
		rec  Record
	}{
		{"seq 0", testKey(1), testRecord(0)},
		{"negative seq", testKey(1), testRecord(-3)},
		{"no time", testKey(1), Record{Seq: 1}},
		{"short key", testKey(1)[:32], testRecord(1)},
		{"private candidate", testKey(1), Record{Seq: 1, Time: testTime, Candidates: []Candidate{cand(Public, "192.168.1.2:1")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Seal(tc.priv, 1, tc.rec); err == nil {
				t.Error("sealed")
			}
		})
	}
}

// TestOpenRefuses checks every way an item can be wrong for the reader.
func TestOpenRefuses(t *testing.T) {
	priv, id := testKey(1), pubOf(testKey(1))
	p := PeriodOf(testTime)
	good := mustSeal(t, priv, p, testRecord(100))
	resign := func(it Item) Item { // a change the key's holder made
		s, _ := NewBlindedSigner(priv, p)
		it.Sig = s.Sign(it.SignedBytes())
		return it
	}
	for _, tc := range []struct {
		name string
		edit func(Item) Item
		id   ed25519.PublicKey
		p    Period
		now  time.Time
		held int64
		want error
	}{
		{name: "another peer's ID", id: pubOf(testKey(2)), want: ErrWrongKey},
		{name: "the next period", p: p + 1, want: ErrWrongKey},
		{name: "the previous period", p: p - 1, want: ErrWrongKey},
		{name: "unblinded key", edit: func(it Item) Item { copy(it.Key[:], id); return it }, want: ErrWrongKey},
		{name: "bad ID", id: make([]byte, 31), want: ErrBadKey},
		{name: "value bit flipped", edit: func(it Item) Item { it.Value[40] ^= 1; return it }, want: ErrBadSignature},
		{name: "nonce bit flipped", edit: func(it Item) Item { it.Value[0] ^= 1; return it }, want: ErrBadSignature},
		{name: "seq raised", edit: func(it Item) Item { it.Seq++; return it }, want: ErrBadSignature},
		{name: "signature bit flipped", edit: func(it Item) Item { it.Sig[63] ^= 0x10; return it }, want: ErrBadSignature},
		{name: "salt added", edit: func(it Item) Item { it.Salt = []byte("x"); return resign(it) }, want: ErrBadItem},
		{name: "value short", edit: func(it Item) Item { it.Value = it.Value[:ValueSize-1]; return resign(it) }, want: ErrBadItem},
		{name: "value long", edit: func(it Item) Item { it.Value = append(it.Value, 0); return resign(it) }, want: ErrBadItem},
		{name: "seq 0", edit: func(it Item) Item { it.Seq = 0; return resign(it) }, want: ErrBadItem},
		{name: "seq changed and re-signed: the ciphertext is bound to it", edit: func(it Item) Item { it.Seq++; return resign(it) }, want: ErrBadItem},
		{name: "ciphertext changed and re-signed", edit: func(it Item) Item { it.Value[100] ^= 1; return resign(it) }, want: ErrBadItem},
		{name: "replayed: the held seq", held: 100, want: ErrNotNewer},
		{name: "rolled back: below the held seq", held: 101, want: ErrNotNewer},
		{name: "stale", now: testTime.Add(MaxRecordAge + time.Second), want: ErrStale},
		{name: "from the future", now: testTime.Add(-MaxClockSkew - time.Second), want: ErrFromFuture},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := good
			it.Value = bytes.Clone(good.Value)
			if tc.edit != nil {
				it = tc.edit(it)
			}
			if tc.id == nil {
				tc.id = id
			}
			if tc.p == 0 {
				tc.p = p
			}
			if tc.now.IsZero() {
				tc.now = testTime
			}
			if rec, err := Open(tc.id, tc.p, it, tc.now, tc.held); !errors.Is(err, tc.want) {
				t.Errorf("opened %+v, error %v; want %v", rec, err, tc.want)
			}
		})
	}
}

// TestOpenAccepts checks the edges that must still open.
func TestOpenAccepts(t *testing.T) {
	priv := testKey(1)
	p := PeriodOf(testTime)
	it := mustSeal(t, priv, p, testRecord(100))
	for _, tc := range []struct {
		name string
		now  time.Time
		held int64
	}{
		{"newer than held", testTime, 99},
		{"as old as allowed", testTime.Add(MaxRecordAge), 0},
		{"as far ahead as allowed", testTime.Add(-MaxClockSkew), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Open(pubOf(priv), p, it, tc.now, tc.held); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestOpenRefusesBadPlaintext checks that an item signed and encrypted by
// the key's holder but holding a bad plaintext is refused.
func TestOpenRefusesBadPlaintext(t *testing.T) {
	priv := testKey(1)
	p := PeriodOf(testTime)
	for _, plain := range [][]byte{nil, make([]byte, plainSize), bytes.Repeat([]byte{1}, plainSize)} {
		it, err := sealPlain(priv, p, 1, plain, zeroReader{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Open(pubOf(priv), p, it, testTime, 0); err == nil {
			t.Errorf("plaintext %x opened", plain)
		}
	}
}

// TestBEP44Vectors checks SignedBytes, Target and Check against the test
// vectors of BEP 44 ("test vectors", mutable with and without salt).
func TestBEP44Vectors(t *testing.T) {
	key := mustHex(t, "77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")
	for _, tc := range []struct {
		salt, signed, sig, target string
	}{
		{
			salt:   "",
			signed: "3:seqi1e1:v12:Hello World!",
			sig:    "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01",
			target: "4a533d47ec9c7d95b1ad75f576cffc641853b750",
		},
		{
			salt:   "foobar",
			signed: "4:salt6:foobar3:seqi1e1:v12:Hello World!",
			sig:    "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17ddf9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08",
			target: "411eba73b6f087ca51a3795d9c8c938d365e32c1",
		},
	} {
		it := Item{Seq: 1, Value: []byte("Hello World!")}
		if tc.salt != "" {
			it.Salt = []byte(tc.salt)
		}
		copy(it.Key[:], key)
		copy(it.Sig[:], mustHex(t, tc.sig))
		if got := string(it.SignedBytes()); got != tc.signed {
			t.Errorf("salt %q: signed bytes %q, want %q", tc.salt, got, tc.signed)
		}
		if got := it.Target().String(); got != tc.target {
			t.Errorf("salt %q: target %s, want %s", tc.salt, got, tc.target)
		}
		if err := it.Check(); err != nil {
			t.Errorf("salt %q: %v", tc.salt, err)
		}
	}
}

func TestItemCheckLimits(t *testing.T) {
	s, err := NewBlindedSigner(testKey(1), 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		value    int
		salt     int
		wantFail bool
	}{
		{"value at the limit", 995, 0, false},  // "995:" + 995 bytes = 999
		{"value over the limit", 997, 0, true}, // 4 + 997 = 1001
		{"salt at the limit", 10, MaxSaltSize, false},
		{"salt over the limit", 10, MaxSaltSize + 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := Item{Key: s.Public(), Seq: 1, Value: make([]byte, tc.value), Salt: make([]byte, tc.salt)}
			it.Sig = s.Sign(it.SignedBytes())
			if err := it.Check(); (err != nil) != tc.wantFail {
				t.Errorf("Check() = %v, want failure %v", err, tc.wantFail)
			}
		})
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func BenchmarkSeal(b *testing.B) {
	priv := testKey(1)
	rec := testRecord(1)
	for range b.N {
		if _, err := Seal(priv, 20598, rec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	priv := testKey(1)
	it := mustSeal(b, priv, 20598, testRecord(1))
	for range b.N {
		if _, err := Open(pubOf(priv), 20598, it, testTime, 0); err != nil {
			b.Fatal(err)
		}
	}
}
