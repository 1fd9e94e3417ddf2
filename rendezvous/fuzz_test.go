package rendezvous

import (
	"bytes"
	"testing"
)

// FuzzDecodeRecord feeds the plaintext decoder anything: it must never
// panic, and whatever it accepts must encode back to the same bytes (it
// accepts exactly what encodeRecord writes).
func FuzzDecodeRecord(f *testing.F) {
	hard := fullRecord()
	hard.Flags = FlagHardNAT
	for _, rec := range []Record{{Time: testTime}, testRecord(0), fullRecord(), hard, {Time: testTime, Flags: 0xff}} {
		rec.Seq = 0
		b, err := encodeRecord(rec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRecord(b)
		if err != nil {
			return
		}
		again, err := encodeRecord(rec)
		if err != nil {
			t.Fatalf("decoded %+v, which does not encode: %v", rec, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("decoded %+v from %x, which encodes as %x", rec, b, again)
		}
	})
}

// FuzzOpen runs Open over items as a DHT node could serve them: any value,
// salt, seq and signature under the expected key, and (with signed set)
// any plaintext authentically signed and encrypted, which reaches the
// decoder. Open must never panic, and a record it opens must be one Seal
// could have made.
func FuzzOpen(f *testing.F) {
	priv := testKey(1)
	p := PeriodOf(testTime)
	good, err := seal(priv, p, testRecord(7), zeroReader{})
	if err != nil {
		f.Fatal(err)
	}
	plain, _ := encodeRecord(testRecord(0))
	hardRec := testRecord(0)
	hardRec.Flags = FlagHardNAT
	hardPlain, _ := encodeRecord(hardRec)
	f.Add(false, good.Value, []byte(nil), good.Seq, good.Sig[:])
	f.Add(true, plain, []byte(nil), int64(7), []byte(nil))
	f.Add(true, hardPlain, []byte(nil), int64(8), []byte(nil))
	f.Add(true, []byte{1, 2, 3}, []byte("salt"), int64(-1), []byte(nil))
	f.Fuzz(func(t *testing.T, signed bool, value, salt []byte, seq int64, sig []byte) {
		it := Item{Key: good.Key, Salt: salt, Seq: seq, Value: value}
		if signed {
			var err error
			if it, err = sealPlain(priv, p, seq, value, zeroReader{}); err != nil {
				return // too big for BEP 44
			}
			it.Salt = salt
		} else {
			copy(it.Sig[:], sig)
		}
		rec, err := Open(pubOf(priv), p, it, testTime, 0)
		if err != nil {
			return
		}
		again, err := seal(priv, p, rec, zeroReader{})
		if err != nil {
			t.Fatalf("opened %+v, which does not seal: %v", rec, err)
		}
		if signed && !bytes.Equal(again.Value, it.Value) {
			t.Fatalf("opened %+v from plaintext %x, which seals differently", rec, value)
		}
	})
}
