package agent

import (
	"context"
	"crypto/ed25519"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/session"
	"github.com/punchdrop/punchdrop/session/sessiontest"
	"github.com/punchdrop/punchdrop/testutil"
)

// pending lists the IDs of an agent's pending peer requests.
func pending(t *testing.T, ctx context.Context, c *control.Client) map[string]bool {
	t.Helper()
	peers, err := c.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range peers {
		if p.State == control.StatePending {
			out[p.NodeID] = true
		}
	}
	return out
}

// TestStrangerFloodKeepsRealRequests: three strangers ask to become
// alice's peers; then a flood of probes, each from a new key, comes from
// 64 addresses for 3 s. The three requests survive, few new ones are
// stored, and bob, a real peer, connects and is heard during the flood.
func TestStrangerFloodKeepsRealRequests(t *testing.T) {
	const (
		floodFor = 3 * time.Second
		// maxStored is what the node's limits let through in floodFor:
		// a burst of 10 peer requests, then one every 2 s.
		maxStored = 10 + 3
	)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	alice, aliceHome := runAgent(t, "alice")
	bob, _ := runAgent(t, "bob")
	aliceID, err := alice.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bobID, err := bob.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	to, err := session.ParseNodeID(aliceID.NodeID)
	if err != nil {
		t.Fatal(err)
	}
	prober := sessiontest.Prober{Target: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(aliceID.ListenPort)), To: to, Name: "mallory"}

	// Three real requests, from three addresses.
	real := map[string]bool{}
	var keys []ed25519.PrivateKey
	for range 3 {
		_, key, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		id, _ := session.NodeIDFromKey(key.Public().(ed25519.PublicKey))
		real[id.String()] = true
		keys = append(keys, key)
	}
	realSources := sessiontest.Sources(t, 2, len(keys))
	testutil.Until(t, ctx, "three pending requests", func() bool {
		for i, key := range keys {
			prober.Request(realSources[i], key)
		}
		return len(pending(t, ctx, alice)) == len(keys)
	})

	floodSources := sessiontest.Sources(t, 10, 64)
	floodCtx, stopFlood := context.WithTimeout(ctx, floodFor)
	defer stopFlood()
	var sent int
	var flooder sync.WaitGroup
	flooder.Go(func() { sent = prober.Flood(floodCtx, floodSources) })
	time.Sleep(floodFor / 3)
	if _, err := alice.Connect(ctx, bobID.ConnectionString); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Connect(ctx, aliceID.ConnectionString); err != nil {
		t.Fatal(err)
	}
	if err := bob.SendMessage(floodCtx, control.MsgRequest{Peer: "alice", Text: "through the flood"}); err != nil {
		t.Fatalf("bob's message during the flood: %v", err)
	}
	flooder.Wait()

	after := pending(t, ctx, alice)
	for id := range real {
		if !after[id] {
			t.Errorf("real request %s was dropped by the flood", id[:session.ShortIDLen])
		}
	}
	stored := len(after) - len(real)
	log, _ := os.ReadFile(ResolvePaths(aliceHome).Log)
	logged := strings.Count(string(log), "peer request")
	t.Logf("%d probes from 64 addresses in %s, each from a new key: %d new requests stored, %d 'peer request' log lines in all",
		sent, floodFor, stored, logged)
	if stored > maxStored {
		t.Errorf("%d requests stored during the flood; want at most %d", stored, maxStored)
	}
}
