package session

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/punchdrop/punchdrop/testutil"
)

// laneCounter is a Transfer callback that counts the transfer streams
// it is given and echoes the first byte of each back.
type laneCounter struct {
	mu      sync.Mutex
	streams int
}

func (c *laneCounter) serve(ctx context.Context, _ *Session, s *Stream) {
	c.mu.Lock()
	c.streams++
	c.mu.Unlock()
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err == nil {
		s.Write(b[:])
	}
	s.Close()
}

func (c *laneCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams
}

// TestLanesJoinTheSession: either side opens lanes of its session; each
// lane carries transfer streams to the peer's Transfer callback, the
// session stays the peer's only one, and the lanes end with it.
func TestLanesJoinTheSession(t *testing.T) {
	var atAlice, atBob laneCounter
	alice := &testNode{Node: runNode(t, "alice", Events{Transfer: atAlice.serve})}
	bob := &testNode{Node: runNode(t, "bob", Events{Transfer: atBob.serve})}
	alice.AddPeer(bob.info())
	bob.AddPeer(alice.info())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	sess, err := alice.WaitSession(ctx, bob.ID())
	if err != nil {
		t.Fatal(err)
	}
	// Each side opens three; alice's three are reused by bob's ask.
	streams := sess.OpenLanes(ctx, 3)
	bobSess, err := bob.WaitSession(ctx, alice.ID())
	if err != nil {
		t.Fatal(err)
	}
	streams = append(streams, bobSess.OpenLanes(ctx, 3)...)
	if len(streams) != 6 {
		t.Fatalf("%d lane streams opened, want 6", len(streams))
	}
	for _, s := range streams {
		if _, err := s.Write([]byte{7}); err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		if _, err := io.ReadFull(s, b[:]); err != nil || b[0] != 7 {
			t.Fatalf("echo on a lane: %v %v", b, err)
		}
	}
	if atAlice.count() != 3 || atBob.count() != 3 {
		t.Fatalf("streams served: alice %d, bob %d; want 3 each", atAlice.count(), atBob.count())
	}
	for _, pair := range []struct{ n, peer *testNode }{{alice, bob}, {bob, alice}} {
		if got := len(pair.n.sessionsWith(pair.peer.ID())); got != 1 {
			t.Fatalf("%s has %d sessions with its peer; lanes must not make sessions", pair.n.name(), got)
		}
		if got := len(pair.n.lanesOf(pair.peer.ID())); got != 3 {
			t.Fatalf("%s has %d lanes, want the 3 both sides share", pair.n.name(), got)
		}
	}
	lanes := sess.lanes.live(MaxLanes)
	sess.close("test")
	for _, c := range lanes {
		select {
		case <-c.Context().Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a lane outlived its session")
		}
	}
	testutil.WaitFor(t, 5*time.Second, "bob's lanes to end", func() bool { return len(bob.lanesOf(alice.ID())) == 0 })
}

// TestLaneOfNoSessionIsRefused: a lane whose token names no session is
// refused, and makes no session either.
func TestLaneOfNoSessionIsRefused(t *testing.T) {
	alice, bob := newTestNode(t, "alice"), newTestNode(t, "bob")
	alice.AddPeer(bob.info())
	bob.AddPeer(alice.info())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	sess, before := settledSession(t, ctx, alice.Node, bob.Node)
	forged := &laneSet{token: newToken()}
	_, err := alice.dialLane(ctx, alice.peer(bob.ID()), &Session{Path: sess.Path, lanes: forged})
	if err == nil {
		t.Fatal("a lane of no session joined")
	}
	if got := bob.sessionsWith(alice.ID()); len(got) != 1 || got[0] != before {
		t.Fatalf("bob has sessions %v with alice after a forged lane, want only %v", got, before)
	}
}

// settledSession waits until a and b each hold one session with the
// other, and returns a's and b's: both may dial at once, one of the two
// sessions then gives way, and the acceptor registers a session a moment
// after the dialer has it.
func settledSession(t *testing.T, ctx context.Context, a, b *Node) (ours, theirs *Session) {
	t.Helper()
	if _, err := a.WaitSession(ctx, b.ID()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "one session on both sides", func() bool {
		as, bs := a.sessionsWith(b.ID()), b.sessionsWith(a.ID())
		if len(as) != 1 || len(bs) != 1 {
			return false
		}
		ours, theirs = as[0], bs[0]
		return true
	})
	return ours, theirs
}

// lanesOf lists the lanes of the node's live sessions with id.
func (n *Node) lanesOf(id NodeID) []*Session {
	var out []*Session
	for _, s := range n.sessionsWith(id) {
		for range s.lanes.live(MaxLanes) {
			out = append(out, s)
		}
	}
	return out
}

// TestLaneCarriesTransfersOnly: a request frame on a lane is refused
// unread (its stream reset): lanes carry transfers, and the peer's
// requests go on the session, where they are bounded.
func TestLaneCarriesTransfersOnly(t *testing.T) {
	var atBob laneCounter
	alice := &testNode{Node: runNode(t, "alice", Events{})}
	bob := &testNode{Node: runNode(t, "bob", Events{Transfer: atBob.serve})}
	alice.AddPeer(bob.info())
	bob.AddPeer(alice.info())
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	sess, _ := settledSession(t, ctx, alice.Node, bob.Node)
	if len(sess.OpenLanes(ctx, 1)) != 1 {
		t.Fatal("no lane opened")
	}
	stream, err := sess.lanes.live(1)[0].OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(stream, FrameMsg, Msg{ID: "on-a-lane", Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	_, _, err = ReadFrame(stream)
	var reset *quic.StreamError
	if !errors.As(err, &reset) {
		t.Fatalf("a request on a lane was answered (%v), want the stream reset", err)
	}
}
