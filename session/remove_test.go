package session

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/testutil"
)

// cutOffWatch counts what a node delivers after RemovePeer returned: while
// removed is set, no Message or Transfer callback may start or still run.
type cutOffWatch struct {
	removed   atomic.Bool
	late      atomic.Int64 // callbacks seen while removed
	delivered atomic.Int64 // messages delivered, any time
	offers    atomic.Int64 // transfer streams served, any time
}

func (w *cutOffWatch) check() {
	if w.removed.Load() {
		w.late.Add(1)
	}
}

func (w *cutOffWatch) events() Events {
	return Events{
		Message: func(NodeID, string) error {
			w.check()
			w.delivered.Add(1)
			return nil
		},
		Transfer: func(ctx context.Context, _ *Session, stream *Stream) {
			w.check()
			w.offers.Add(1)
			stop := context.AfterFunc(ctx, func() { stream.CancelRead(0) })
			defer stop()
			io.Copy(io.Discard, stream)
			stream.CancelWrite(0)
			w.check() // still running after RemovePeer returned
		},
	}
}

// flood makes bob send messages and transfer offers to alice until ctx
// ends: on his current session, and on extra sessions he keeps dialing,
// so that at any moment a session may be new, waiting for alice's peer
// loop, or half made.
func flood(ctx context.Context, bob *testNode, alice NodeID, aliceAddr netip.AddrPort) *sync.WaitGroup {
	var wg sync.WaitGroup
	send := func(sess *Session, i int) {
		bob.request(ctx, sess, FrameMsg, Msg{ID: fmt.Sprint(rand.Uint64()), Text: fmt.Sprint(i)}, FrameMsgAck)
	}
	offer := func(sess *Session) {
		stream, err := sess.OpenTransferStream(ctx)
		if err != nil {
			return
		}
		stream.Write(make([]byte, 1024))
		stream.Close()
	}
	pause := func() {
		select {
		case <-ctx.Done():
		case <-time.After(time.Millisecond):
		}
	}
	for range 2 { // on bob's current session
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				p := bob.peer(alice)
				sess := p.session()
				if sess == nil || sess.conn.Context().Err() != nil {
					pause()
					continue
				}
				send(sess, i)
				offer(sess)
			}
		})
	}
	wg.Go(func() { // on sessions of his own making
		for ctx.Err() == nil {
			sess, err := bob.dial(ctx, bob.peer(alice), route{LocalUDP, aliceAddr})
			if err != nil {
				pause()
				continue
			}
			wg.Go(func() { // let it live a while, busy
				defer sess.close("done")
				for j := 0; j < 20 && ctx.Err() == nil; j++ {
					send(sess, j)
					offer(sess)
				}
			})
		}
	})
	return &wg
}

// TestRemovedPeerIsCutOff: bob floods alice with messages and transfer
// offers on several sessions while she removes him, many times over. Once
// RemovePeer returned, no Message or Transfer callback runs at alice.
func TestRemovedPeerIsCutOff(t *testing.T) {
	const iterations = 50
	var w cutOffWatch
	alice := &testNode{Node: runNode(t, "alice", w.events())}
	bob := newTestNode(t, "bob")
	bob.AddPeer(alice.info())
	var removeTook, cutOff []time.Duration
	for i := range iterations {
		w.removed.Store(false)
		alice.AddPeer(bob.info())
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		if _, err := bob.WaitSession(ctx, alice.ID()); err != nil {
			t.Fatalf("iteration %d: %v", i, err)
		}
		floodCtx, stopFlood := context.WithCancel(ctx)
		flooders := flood(floodCtx, bob, alice.ID(), alice.addr())
		before := w.delivered.Load()
		testutil.WaitFor(t, 5*time.Second, "bob's flood to arrive", func() bool { return w.delivered.Load() > before })
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)

		bobs := bob.sessionsWith(alice.ID())
		start := time.Now()
		alice.RemovePeer(bob.ID())
		w.removed.Store(true)
		removeTook = append(removeTook, time.Since(start))
		for _, s := range bobs {
			select {
			case <-s.conn.Context().Done():
			case <-time.After(idleTimeout):
				t.Fatalf("iteration %d: bob's session %s still open", i, s)
			}
		}
		cutOff = append(cutOff, time.Since(start))
		time.Sleep(50 * time.Millisecond) // bob keeps trying
		stopFlood()
		flooders.Wait()
		cancel()
		if n := w.late.Load(); n > 0 {
			t.Fatalf("iteration %d: %d callbacks ran after RemovePeer returned", i, n)
		}
	}
	slices.Sort(removeTook)
	slices.Sort(cutOff)
	t.Logf("%d removals under a flood (%d messages, %d transfer offers delivered in all): RemovePeer took median %s, max %s; bob's sessions cut off after median %s, max %s",
		iterations, w.delivered.Load(), w.offers.Load(), removeTook[len(removeTook)/2], removeTook[len(removeTook)-1], cutOff[len(cutOff)/2], cutOff[len(cutOff)-1])
}

// sessionsWith lists the node's live sessions with id.
func (n *Node) sessionsWith(id NodeID) []*Session {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sessionsWithLocked(id)
}
