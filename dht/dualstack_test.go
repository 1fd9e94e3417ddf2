package dht_test

import (
	"context"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/dht"
	"github.com/punchdrop/punchdrop/rendezvous"
)

// TestDualStackNodeAsksEachNodeOnce: a node on a dual-stack socket (the
// default ":0", as the agent's) hears IPv4 nodes as IPv4-mapped IPv6
// addresses, while other nodes' replies list them as IPv4; it still asks
// each node once per traversal and puts to each once, as a node on an
// IPv4 socket does. (It used to know every node under both forms, and
// asked and stored everything twice.)
func TestDualStackNodeAsksEachNodeOnce(t *testing.T) {
	d := startPrivateDHT(t, 3)
	ro, err := dht.New(dht.Config{Listen: ":0", Bootstrap: []string{d.nodes[0].Addr().String()}, ReadOnly: true, Logger: testLogger(t, "ro")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	<-ro.Bootstrapped()
	if err := ro.BootstrapErr(); err != nil {
		t.Fatal(err)
	}
	_, priv := newKey(t)
	now := time.Now()
	p := rendezvous.PeriodOf(now)
	it, err := rendezvous.Seal(priv, p, newRecord(rendezvous.NextSeq(0, now), now))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	stats, err := ro.Put(ctx, it)
	if err != nil || stats.Queried != 3 || stats.Answered != 3 || stats.Stored != 3 {
		t.Fatalf("put: %v, %+v; want 3 nodes asked, answering and storing", err, stats)
	}
	for i := range d.nodes {
		if n := len(d.storedAt(i)); n != 1 {
			t.Errorf("node %d stored the item %d times, want once", i, n)
		}
	}
	if _, stats, err := ro.Get(ctx, it.Target(), nil); err != nil || stats.Queried != 3 || stats.Found != 3 {
		t.Errorf("get: %v, %+v; want 3 nodes asked, each holding the item", err, stats)
	}
}
