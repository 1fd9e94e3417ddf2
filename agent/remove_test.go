package agent

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/testutil"
)

// TestRemovedPeerMessagesAreNotStored: bob keeps sending messages while
// alice removes him, right after they connected (when sessions are still
// being made and replaced). Once `peers remove` answered, alice stores
// nothing more from him.
func TestRemovedPeerMessagesAreNotStored(t *testing.T) {
	const (
		rounds = 5
		// afterRemove is how long alice's store is watched: far longer
		// than any session or stream handler lives once cut off.
		afterRemove = 2 * time.Second
	)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	alice, bob, _ := connectPair(t, ctx)
	bobID, err := bob.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	count := func() int {
		t.Helper()
		msgs, err := alice.Messages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(msgs)
	}
	for round := range rounds {
		if round > 0 {
			if _, err := alice.Connect(ctx, bobID.ConnectionString); err != nil {
				t.Fatal(err)
			}
		}
		floodCtx, stopFlood := context.WithCancel(ctx)
		var flooders sync.WaitGroup
		for g := range 4 {
			flooders.Go(func() {
				for i := 0; floodCtx.Err() == nil; i++ {
					sendCtx, cancel := context.WithTimeout(floodCtx, time.Second)
					bob.SendMessage(sendCtx, control.MsgRequest{Peer: "alice", Text: fmt.Sprintf("%d/%d/%d", round, g, i)})
					cancel()
				}
			})
		}
		before := count()
		testutil.Until(t, ctx, "bob's messages to arrive", func() bool { return count() > before })
		if err := alice.RemovePeer(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
		atRemove := count()
		time.Sleep(afterRemove)
		later := count()
		stopFlood()
		flooders.Wait()
		if later != atRemove {
			t.Fatalf("round %d: alice stored %d messages from bob after removing him", round, later-atRemove)
		}
	}
}
