package dht

import (
	"bytes"
	"testing"

	"github.com/anacrolix/dht/v2/krpc"

	"github.com/punchdrop/punchdrop/rendezvous"
)

// FuzzItemFromReturn feeds the reading of a "get" reply anything a remote
// node could send in its v, k, sig and seq: it must never panic, and what
// it accepts must be a valid item whose value bencodes back to v.
func FuzzItemFromReturn(f *testing.F) {
	s, err := rendezvous.NewBlindedSigner(bytes.Repeat([]byte{1}, 64), 1)
	if err != nil {
		f.Fatal(err)
	}
	good := rendezvous.Item{Key: s.Public(), Seq: 7, Value: []byte("hello")}
	good.Sig = s.Sign(good.SignedBytes())
	f.Add(good.EncodedValue(), good.Key[:], good.Sig[:], int64(7), true)
	f.Add([]byte("d1:ai1ee"), good.Key[:], good.Sig[:], int64(7), false)
	f.Add([]byte("3:ab"), []byte{}, []byte{}, int64(-1), true)
	f.Fuzz(func(t *testing.T, v, k, sig []byte, seq int64, hasSeq bool) {
		r := &krpc.Return{}
		r.V = v
		copy(r.K[:], k)
		copy(r.Sig[:], sig)
		if hasSeq {
			r.Seq = &seq
		}
		var key rendezvous.BlindedKey
		copy(key[:], k)
		target := rendezvous.MutableTarget(key, nil)
		it, ok := itemFromReturn(r, target, nil)
		if !ok {
			return
		}
		if err := it.Check(); err != nil || !bytes.Equal(it.EncodedValue(), v) || it.Target() != target {
			t.Fatalf("accepted %+v from v=%q: %v", it, v, err)
		}
	})
}
