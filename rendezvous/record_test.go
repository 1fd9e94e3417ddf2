package rendezvous

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// testTime is a fixed instant in period 20598, early afternoon UTC.
var testTime = time.Date(2026, 5, 25, 13, 0, 0, 0, time.UTC)

func cand(kind Kind, s string) Candidate {
	return Candidate{Kind: kind, Addr: netip.MustParseAddrPort(s)}
}

// fullRecord is the biggest record: MaxCandidates IPv6 candidates.
func fullRecord() Record {
	rec := Record{Seq: 1, Time: testTime}
	for i := range MaxCandidates {
		rec.Candidates = append(rec.Candidates, cand(Kind(1+i%3), fmt.Sprintf("[2001:db8::%x]:%d", i+1, 40000+i)))
	}
	return rec
}

func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  Record
	}{
		{"no candidates", Record{Time: testTime}},
		{"public v4", Record{Time: testTime, Candidates: []Candidate{cand(Public, "203.0.113.7:41641")}}},
		{"every kind and family", Record{Time: testTime, Candidates: []Candidate{
			cand(Public, "203.0.113.7:41641"),
			cand(Public, "[2001:db8::7]:41641"),
			cand(PortMapped, "203.0.113.7:5000"),
			cand(Relay, "198.51.100.3:49152"),
			cand(Relay, "[2001:db8:1::3]:49153"),
		}}},
		{"same address, two kinds", Record{Time: testTime, Candidates: []Candidate{
			cand(Public, "203.0.113.7:41641"), cand(PortMapped, "203.0.113.7:41641"),
		}}},
		{"lab range", Record{Time: testTime, Candidates: []Candidate{cand(Public, "198.18.0.11:41641")}}},
		{"full", fullRecord()},
		{"hard NAT", Record{Time: testTime, Flags: FlagHardNAT, Candidates: []Candidate{cand(Public, "203.0.113.7:41641")}}},
		{"hard NAT, no candidates", Record{Time: testTime, Flags: FlagHardNAT}},
		{"a newer build's flag", Record{Time: testTime, Flags: FlagHardNAT | 0x80, Candidates: []Candidate{cand(Relay, "198.51.100.3:49152")}}},
		{"full, with a flag (v2's largest)", func() Record { r := fullRecord(); r.Flags = FlagHardNAT; return r }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.rec.Seq = 0 // travels outside the plaintext
			b, err := encodeRecord(tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != plainSize {
				t.Fatalf("plaintext is %d bytes, want %d", len(b), plainSize)
			}
			again, _ := encodeRecord(tc.rec)
			if !bytes.Equal(b, again) {
				t.Error("encoding is not deterministic")
			}
			got, err := decodeRecord(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.rec) {
				t.Errorf("decoded %+v, want %+v", got, tc.rec)
			}
		})
	}
}

// TestRecordMappedAddress checks that an IPv4-mapped IPv6 address is
// stored as IPv4 (one address, one encoding).
func TestRecordMappedAddress(t *testing.T) {
	b, err := encodeRecord(Record{Time: testTime, Candidates: []Candidate{cand(Public, "[::ffff:203.0.113.7]:41641")}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := netip.MustParseAddrPort("203.0.113.7:41641"); got.Candidates[0].Addr != want {
		t.Errorf("decoded %v, want %v", got.Candidates[0].Addr, want)
	}
}

func TestRecordRefusesCandidates(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    []Candidate
		want error
	}{
		{"private v4", []Candidate{cand(Public, "192.168.1.20:41641")}, ErrBadCandidate},
		{"private 10/8", []Candidate{cand(Public, "10.0.0.1:41641")}, ErrBadCandidate},
		{"shared space", []Candidate{cand(Public, "100.64.1.1:41641")}, ErrBadCandidate},
		{"loopback", []Candidate{cand(Public, "127.0.0.1:41641")}, ErrBadCandidate},
		{"loopback v6", []Candidate{cand(Public, "[::1]:41641")}, ErrBadCandidate},
		{"link-local v6", []Candidate{cand(Public, "[fe80::1]:41641")}, ErrBadCandidate},
		{"link-local with zone", []Candidate{cand(Public, "[fe80::1%eth0]:41641")}, ErrBadCandidate},
		{"ULA", []Candidate{cand(Public, "[fd00::1]:41641")}, ErrBadCandidate},
		{"unspecified", []Candidate{cand(Public, "0.0.0.0:41641")}, ErrBadCandidate},
		{"multicast", []Candidate{cand(Public, "224.0.0.251:5353")}, ErrBadCandidate},
		{"port 0", []Candidate{cand(Public, "203.0.113.7:0")}, ErrBadCandidate},
		{"zero address", []Candidate{{Kind: Public}}, ErrBadCandidate},
		{"kind 0", []Candidate{cand(0, "203.0.113.7:41641")}, ErrBadCandidate},
		{"kind 4", []Candidate{cand(4, "203.0.113.7:41641")}, ErrBadCandidate},
		{"duplicate", []Candidate{cand(Relay, "203.0.113.7:41641"), cand(Relay, "203.0.113.7:41641")}, ErrBadCandidate},
		{"mapped duplicate", []Candidate{cand(Public, "203.0.113.7:41641"), cand(Public, "[::ffff:203.0.113.7]:41641")}, ErrBadCandidate},
		{"one too many", append(fullRecord().Candidates, cand(Public, "203.0.113.7:1")), ErrTooManyCandidates},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := encodeRecord(Record{Time: testTime, Candidates: tc.c}); !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := encodeRecord(Record{}); err == nil {
		t.Error("a record without a time was encoded")
	}
}

// TestDecodeRecordRefuses feeds decodeRecord plaintexts that encodeRecord
// never writes, made by editing a good one.
func TestDecodeRecordRefuses(t *testing.T) {
	good, err := encodeRecord(Record{Time: testTime, Candidates: []Candidate{
		cand(Public, "203.0.113.7:41641"), cand(Relay, "[2001:db8::3]:49152"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Offsets: the first candidate starts at headerSize (8 bytes, IPv4),
	// the second right after it (20 bytes, IPv6).
	const headerSize = headerSizeV1
	second := headerSize + candidate4
	for _, tc := range []struct {
		name string
		edit func(b []byte) []byte
	}{
		{"short", func(b []byte) []byte { return b[:plainSize-1] }},
		{"long", func(b []byte) []byte { return append(b, 0) }},
		{"empty", func([]byte) []byte { return nil }},
		{"version 0", func(b []byte) []byte { b[0] = 0; return b }},
		{"version 2 over a v1 body", func(b []byte) []byte { b[0] = 2; return b }},
		{"version 3", func(b []byte) []byte { b[0] = 3; return b }},
		{"version 255", func(b []byte) []byte { b[0] = 255; return b }},
		{"time 0", func(b []byte) []byte { clear(b[1:9]); return b }},
		{"negative time", func(b []byte) []byte { b[1] = 0x80; return b }},
		{"count too high", func(b []byte) []byte { b[9] = MaxCandidates + 1; return b }},
		{"count 255", func(b []byte) []byte { b[9] = 255; return b }},
		{"count one more (zero padding read as a candidate)", func(b []byte) []byte { b[9]++; return b }},
		{"count one less (a candidate left in the padding)", func(b []byte) []byte { b[9]--; return b }},
		{"kind 0", func(b []byte) []byte { b[headerSize] = 0; return b }},
		{"kind 4", func(b []byte) []byte { b[headerSize] = 4; return b }},
		{"family 5", func(b []byte) []byte { b[headerSize+1] = 5; return b }},
		{"family 6 for an IPv4 candidate", func(b []byte) []byte { b[headerSize+1] = 6; return b }},
		{"private address", func(b []byte) []byte { copy(b[headerSize+2:], []byte{192, 168, 1, 1}); return b }},
		{"port 0", func(b []byte) []byte { clear(b[headerSize+6 : headerSize+8]); return b }},
		{"IPv4-mapped IPv6", func(b []byte) []byte {
			copy(b[second+2:], netip.MustParseAddr("::ffff:203.0.113.9").AsSlice())
			return b
		}},
		{"duplicate", func(b []byte) []byte {
			b[9] = 3
			copy(b[second+candidate6:], b[second:second+candidate6])
			return b
		}},
		{"padding not zero", func(b []byte) []byte { b[plainSize-1] = 1; return b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(bytes.Clone(good))
			if rec, err := decodeRecord(b); !errors.Is(err, ErrBadRecord) {
				t.Errorf("decoded %+v, error %v; want ErrBadRecord", rec, err)
			}
		})
	}
}

// TestRecordVersions: a record with no flag is written as v1, byte for
// byte what the previous build wrote (so agents of that build still read
// it), one with a flag as v2; both read back, and a v2 record with no
// flag (which encodeRecord never writes) or its flags byte missing is
// refused.
func TestRecordVersions(t *testing.T) {
	// v1 as the previous build wrote it: version, time, count 1, a
	// public IPv4 candidate 203.0.113.7:41641, zero padding.
	v1 := make([]byte, plainSize)
	v1[0] = 1
	binary.BigEndian.PutUint64(v1[1:9], uint64(testTime.Unix()))
	copy(v1[9:], []byte{1, byte(Public), 4, 203, 0, 113, 7, 0xa2, 0xa9}) // 41641 = 0xa2a9
	rec := Record{Time: testTime, Candidates: []Candidate{cand(Public, "203.0.113.7:41641")}}
	got, err := decodeRecord(v1)
	if err != nil || !reflect.DeepEqual(got, rec) {
		t.Fatalf("v1 plaintext decoded as %+v, %v; want %+v", got, err, rec)
	}
	if b, err := encodeRecord(rec); err != nil || !bytes.Equal(b, v1) {
		t.Fatalf("a record with no flag encodes as %x, %v; want v1 %x", b, err, v1)
	}
	hard := rec
	hard.Flags = FlagHardNAT
	v2, err := encodeRecord(hard)
	if err != nil {
		t.Fatal(err)
	}
	if v2[0] != formatV2 || Flags(v2[9]) != FlagHardNAT || !bytes.Equal(v2[10:10+1+candidate4], v1[9:9+1+candidate4]) {
		t.Fatalf("hard record encodes as %x", v2)
	}
	for _, tc := range []struct {
		name string
		edit func(b []byte) []byte
	}{
		{"v2 with no flag", func(b []byte) []byte { b[9] = 0; return b }},
		{"v2 without its flags byte (a v1 body)", func([]byte) []byte { b := bytes.Clone(v1); b[0] = formatV2; return b }},
		{"v1 with a v2 body", func(b []byte) []byte { b[0] = formatV1; return b }},
		{"v2 count too high", func(b []byte) []byte { b[10] = MaxCandidates + 1; return b }},
		{"v2 padding not zero", func(b []byte) []byte { b[plainSize-1] = 1; return b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if rec, err := decodeRecord(tc.edit(bytes.Clone(v2))); !errors.Is(err, ErrBadRecord) {
				t.Errorf("decoded %+v, error %v; want ErrBadRecord", rec, err)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Public: "public", PortMapped: "port-mapped", Relay: "relay", 9: "kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
	if got := cand(Relay, "[2001:db8::3]:49152").String(); got != "relay [2001:db8::3]:49152" {
		t.Errorf("Candidate.String() = %q", got)
	}
}
