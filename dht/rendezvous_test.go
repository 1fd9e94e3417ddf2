package dht_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/dht"
	"github.com/punchdrop/punchdrop/rendezvous"
)

// privateNodes is the size of the test DHT: enough that a put lands on
// nodes other than the publisher's and the reader's.
const privateNodes = 5

// TestRendezvousOverPrivateDHT is the whole path on five loopback nodes:
// node X puts its record, node Y, knowing only X's node ID, finds and
// opens it; an older record does not replace a newer one; and no node saw
// X's node ID or any of its addresses, in what it stored or in any
// datagram it received.
func TestRendezvousOverPrivateDHT(t *testing.T) {
	d := startPrivateDHT(t, privateNodes)
	x, y := d.nodes[1], d.nodes[privateNodes-1]
	id, priv := newKey(t)
	now := time.Now()
	p := rendezvous.PeriodOf(now)
	seq := rendezvous.NextSeq(0, now)
	rec := newRecord(seq, now)
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()

	it, err := rendezvous.Seal(priv, p, rec)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := x.Put(ctx, it)
	if err != nil {
		t.Fatalf("put: %v (%+v)", err, stats)
	}
	t.Logf("put: stored on %d nodes, %d of %d answered, took %v", stats.Stored, stats.Answered, stats.Queried, stats.Took)
	if stats.Stored != privateNodes-1 {
		t.Errorf("stored on %d nodes, want the %d others", stats.Stored, privateNodes-1)
	}

	got, stats, err := lookup(ctx, y, id, p, now, 0)
	if err != nil {
		t.Fatalf("lookup: %v (%+v)", err, stats)
	}
	t.Logf("get: %d nodes had it, %d of %d answered, took %v", stats.Found, stats.Answered, stats.Queried, stats.Took)
	if !reflect.DeepEqual(got, rec) {
		t.Errorf("found %+v, want %+v", got, rec)
	}
	if _, _, err := lookup(ctx, y, id, p, now, got.Seq); !errors.Is(err, rendezvous.ErrNotNewer) {
		t.Errorf("looking up again while holding seq %d: %v, want ErrNotNewer", got.Seq, err)
	}
	if _, _, err := lookup(ctx, y, id, p+1, now, 0); !errors.Is(err, dht.ErrNotFound) {
		t.Errorf("lookup in the next period: %v, want ErrNotFound", err)
	}

	t.Run("older seq does not replace newer", func(t *testing.T) {
		old := newRecord(seq-10, now)
		old.Candidates = old.Candidates[:1]
		oldItem, err := rendezvous.Seal(priv, p, old)
		if err != nil {
			t.Fatal(err)
		}
		// Put from another node than X, as a replaying DHT node would:
		// X's own store would refuse it before it leaves.
		if stats, err := d.nodes[2].Put(ctx, oldItem); !errors.Is(err, dht.ErrSeqNotNewer) {
			t.Errorf("putting seq %d over %d: %v (%+v), want ErrSeqNotNewer", old.Seq, seq, err, stats)
		}
		got, _, err := lookup(ctx, d.nodes[3], id, p, now, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.Seq != seq || len(got.Candidates) != len(rec.Candidates) {
			t.Errorf("after the old put, found seq %d with %d candidates, want seq %d", got.Seq, len(got.Candidates), seq)
		}
		for i := range d.nodes {
			if i == 2 {
				continue // the replaying node keeps its own put
			}
			for _, s := range d.storedAt(i) {
				if s.Seq < seq {
					t.Errorf("node %d stored seq %d after holding %d", i, s.Seq, seq)
				}
			}
		}
	})

	t.Run("newer seq replaces older", func(t *testing.T) {
		newer := newRecord(seq+1, now)
		newer.Candidates = newer.Candidates[1:]
		item, err := rendezvous.Seal(priv, p, newer)
		if err != nil {
			t.Fatal(err)
		}
		if stats, err := x.Put(ctx, item); err != nil {
			t.Fatalf("put: %v (%+v)", err, stats)
		}
		got, _, err := lookup(ctx, y, id, p, now, seq)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, newer) {
			t.Errorf("found %+v, want %+v", got, newer)
		}
	})

	t.Run("privacy", func(t *testing.T) {
		secrets := secretForms(id, rec)
		var items, datagrams int
		for i := range d.nodes {
			for _, s := range d.storedAt(i) {
				items++
				for _, field := range [][]byte{s.Key[:], s.Salt, s.Sig[:], s.Value} {
					checkNoSecret(t, "node "+string(rune('0'+i))+" stored", field, secrets)
				}
			}
			for _, b := range d.taps[i].datagrams() {
				datagrams++
				checkNoSecret(t, "node "+string(rune('0'+i))+" received", b, secrets)
			}
		}
		t.Logf("checked %d stored items and %d datagrams for %d forms of the node ID and addresses", items, datagrams, len(secrets))
		if items < privateNodes-1 {
			t.Errorf("only %d stored items to check", items)
		}
	})
}

// secret is one form of something a DHT node must not see.
type secret struct {
	what  string
	bytes []byte
}

// secretForms lists every form in which the node ID and the record's
// addresses could leak: raw bytes, base32 as the connection string prints
// the ID (both cases), hex and base64; each address as 4 or 16 raw bytes,
// with its port (6 or 18 bytes), and as text.
func secretForms(id []byte, rec rendezvous.Record) []secret {
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(id)
	s := []secret{
		{"node ID", id},
		{"node ID base32", []byte(b32)},
		{"node ID base32 lower", []byte(strings.ToLower(b32))},
		{"node ID hex", []byte(hex.EncodeToString(id))},
		{"node ID base64", []byte(base64.RawStdEncoding.EncodeToString(id))},
		{"node ID first 8 bytes", id[:8]},
	}
	for _, c := range rec.Candidates {
		a := c.Addr.Addr()
		raw := a.AsSlice()
		s = append(s,
			secret{c.String() + " raw", raw},
			secret{c.String() + " raw with port", binary.BigEndian.AppendUint16(bytes.Clone(raw), c.Addr.Port())},
			secret{c.String() + " text", []byte(a.String())},
			secret{c.String() + " text with port", []byte(c.Addr.String())},
		)
	}
	return s
}

func checkNoSecret(t *testing.T, where string, b []byte, secrets []secret) {
	t.Helper()
	for _, s := range secrets {
		if bytes.Contains(b, s.bytes) {
			t.Errorf("%s bytes holding the %s: %q", where, s.what, b)
		}
	}
}

// TestReadOnlyNode checks a node that asks but never answers (BEP 43):
// it puts and gets like any other, and no node keeps it in its routing
// table.
func TestReadOnlyNode(t *testing.T) {
	d := startPrivateDHT(t, 3)
	ro, err := dht.New(dht.Config{Listen: "127.0.0.9:0", Bootstrap: []string{d.nodes[0].Addr().String()}, ReadOnly: true, Logger: testLogger(t, "ro")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	<-ro.Bootstrapped()
	if err := ro.BootstrapErr(); err != nil {
		t.Fatal(err)
	}
	if op := ro.Stats().LastOp; op.Op != "bootstrap" || op.Answered < 1 {
		t.Errorf("after bootstrapping, the last operation is %+v", op)
	}
	id, priv := newKey(t)
	now := time.Now()
	p := rendezvous.PeriodOf(now)
	rec := newRecord(rendezvous.NextSeq(0, now), now)
	it, err := rendezvous.Seal(priv, p, rec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if stats, err := ro.Put(ctx, it); err != nil || stats.Stored != 3 {
		t.Fatalf("put from the read-only node: %v (%+v)", err, stats)
	}
	if got, _, err := lookup(ctx, ro, id, p, now, 0); err != nil || !reflect.DeepEqual(got, rec) {
		t.Errorf("lookup from the read-only node: %+v, %v", got, err)
	}
	for i, n := range d.nodes {
		if st := n.Stats(); st.Nodes != 2 {
			t.Errorf("node %d has %d nodes in its routing table, want the 2 others (not the read-only one)", i, st.Nodes)
		}
	}
	if st := ro.Stats(); st.Items != 1 {
		t.Errorf("the read-only node stores %d items, want only its own put", st.Items)
	}
}
