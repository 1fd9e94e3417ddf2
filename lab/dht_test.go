package lab

import (
	"context"
	"crypto/ed25519"
	"encoding/base32"
	"log/slog"
	"net/netip"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/dht"
	"github.com/punchdrop/punchdrop/rendezvous"
)

// buildPunchdrop builds the punchdrop binary for a test.
func buildPunchdrop(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "punchdrop")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/punchdrop/punchdrop/cmd/punchdrop").CombinedOutput(); err != nil {
		t.Fatalf("build punchdrop: %v\n%s", err, out)
	}
	return bin
}

// dhtNodeIn runs a DHT node inside host h that bootstraps from the lab's
// nodes, as an agent's would: read-only, since it is behind a NAT.
func dhtNodeIn(t *testing.T, h *Host, nodes []*DHTNode) *dht.Node {
	t.Helper()
	conn, err := ListenUDPIn(h.Name(), netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	var bootstrap []string
	for _, n := range nodes {
		bootstrap = append(bootstrap, n.Addr.String())
	}
	logger := slog.New(slog.NewTextHandler(testLog{t}, nil)).With("host", h.Name())
	n, err := dht.New(dht.Config{Conn: conn, Bootstrap: bootstrap, ReadOnly: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	<-n.Bootstrapped()
	if err := n.BootstrapErr(); err != nil {
		t.Fatalf("bootstrap from %s: %v", h.Name(), err)
	}
	return n
}

// testLog writes a logger's lines to the test log.
type testLog struct{ t *testing.T }

func (w testLog) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// TestRendezvousThroughNATs runs three "punchdrop dht-node" processes on
// the lab's internet, a node behind a port-restricted NAT publishes its
// record, a node behind a symmetric NAT finds and opens it knowing only
// the publisher's node ID; the DHT nodes' logs of what they stored hold
// neither the ID nor any of the record's addresses.
func TestRendezvousThroughNATs(t *testing.T) {
	l := New(t)
	bin := buildPunchdrop(t)
	nodes := l.AddDHTNodes(bin, 3)
	siteA, siteB := l.AddSite(PortRestricted), l.AddSite(Symmetric)
	publisher, reader := dhtNodeIn(t, siteA.AddHost(), nodes), dhtNodeIn(t, siteB.AddHost(), nodes)

	id, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	p := rendezvous.PeriodOf(now)
	rec := rendezvous.Record{Seq: rendezvous.NextSeq(0, now), Time: now.UTC().Truncate(time.Second), Candidates: []rendezvous.Candidate{
		{Kind: rendezvous.Public, Addr: netip.AddrPortFrom(siteA.PublicIP(), 41641)},
		{Kind: rendezvous.Relay, Addr: netip.MustParseAddrPort("198.18.0.77:49152")},
	}}
	it, err := rendezvous.Seal(priv, p, rec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stats, err := publisher.Put(ctx, it)
	if err != nil {
		t.Fatalf("put: %v (%+v)", err, stats)
	}
	t.Logf("put from behind a port-restricted NAT: stored on %d nodes, %d of %d answered, %v", stats.Stored, stats.Answered, stats.Queried, stats.Took)

	key, err := rendezvous.BlindPublicKey(id, p)
	if err != nil {
		t.Fatal(err)
	}
	got, stats, err := reader.Get(ctx, rendezvous.MutableTarget(key, nil), nil)
	if err != nil {
		t.Fatalf("get: %v (%+v)", err, stats)
	}
	t.Logf("get from behind a symmetric NAT: %d nodes had it, %d of %d answered, %v", stats.Found, stats.Answered, stats.Queried, stats.Took)
	opened, err := rendezvous.Open(id, p, got, time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(opened, rec) {
		t.Errorf("opened %+v, want %+v", opened, rec)
	}

	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(id)
	stored := 0
	for _, n := range nodes {
		log := n.Log()
		stored += strings.Count(log, "dht stored item")
		for _, secret := range []string{b32, strings.ToLower(b32), siteA.PublicIP().String(), "198.18.0.77", "41641", "49152"} {
			if strings.Contains(log, secret) {
				t.Errorf("the log of the DHT node at %s holds %q:\n%s", n.Addr, secret, log)
			}
		}
	}
	if stored == 0 {
		t.Errorf("no DHT node logged a stored item; logs:\n%s", nodes[0].Log())
	}
}
