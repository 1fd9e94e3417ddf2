package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
	"github.com/punchdrop/punchdrop/lab/linkem"
)

// A very slow link (issue 16): alice's uplink is 1 Mbit/s each way with a
// round trip of 300 ms. She sends bob 2 MiB: two 1 MiB chunks, one on
// the session's connection and one on a lane, each getting half of the
// link: both take about 17 s. The transfer must make steady progress
// on both sides (the shown count moves every few seconds, not once per
// chunk), show a rate no faster than the link, and end on its first
// attempt: nothing times out on the way.
func TestSlowLinkSteadyProgress(t *testing.T) {
	t.Parallel()
	const (
		linkRate = 1_000_000 // bits per second, each way
		size     = 2 << 20
		// maxStill bounds the time the shown count of either side may
		// stand still while the file moves. Counting held chunks only,
		// it stood still for about the whole transfer (the chunks on
		// all lanes end together); piece by piece, it moves every
		// second or so.
		maxStill = 10 * time.Second
	)
	l := lab.New(t)
	siteA, err := l.NewLinkedSite(lab.FullCone)
	if err != nil {
		t.Fatal(err)
	}
	slow := linkem.Shape{Delay: 150 * time.Millisecond, Rate: linkRate}
	if err := siteA.SetLink(linkem.Config{Up: slow, Down: slow}); err != nil {
		t.Fatal(err)
	}
	aliceHome, bobHome := t.TempDir(), t.TempDir()
	writeConfig(t, aliceHome, "")
	writeConfig(t, bobHome, "")
	alice := startAgentIn(t, l, siteA.AddHost(), "alice", aliceHome)
	bob := startAgentIn(t, l, l.AddSite(lab.PortRestricted).AddHost(), "bob", bobHome)
	connectPair(t, alice, bob)
	waitPeer(t, alice, bob.nodeID(), connectTimeout, "connect", connected)

	src := randomFile(t, filepath.Join(t.TempDir(), "slow.bin"), size, 16)
	alice.mustCLI("send", "bob", src)
	type side struct {
		a        *agentProc
		done     int64
		moved    time.Time // when done last grew
		still    time.Duration
		rates    int // samples with a rate shown
		finished bool
	}
	sides := []*side{{a: alice, moved: time.Now()}, {a: bob, moved: time.Now()}}
	deadline := time.Now().Add(transferTimeout)
	for !sides[0].finished || !sides[1].finished {
		if time.Now().After(deadline) {
			t.Fatalf("not done after %s: alice at %d, bob at %d of %d bytes", transferTimeout, sides[0].done, sides[1].done, size)
		}
		time.Sleep(250 * time.Millisecond)
		for _, s := range sides {
			if s.finished {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			st, err := s.a.client().Status(ctx)
			cancel()
			if err != nil {
				t.Fatalf("status of %s: %v", s.a.name, err)
			}
			var tr control.TransferInfo
			for _, x := range st.Transfers {
				if x.Name == "slow.bin" {
					tr = x
				}
			}
			for _, q := range st.Queue {
				if q.Name == "slow.bin" && q.Tries > 0 {
					t.Fatalf("%s: an attempt failed (%d so far): %s", s.a.name, q.Tries, q.Error)
				}
			}
			now := time.Now()
			switch tr.State {
			case control.TransferFailed:
				t.Fatalf("%s: the transfer failed: %s", s.a.name, tr.Error)
			case control.TransferDone:
				s.finished = true
				continue
			case control.TransferQueued:
				if tr.Error != "" {
					t.Fatalf("%s: the transfer went back to the queue: %s", s.a.name, tr.Error)
				}
			}
			if tr.Done > s.done {
				s.done, s.moved = tr.Done, now
			}
			if s.done < size {
				s.still = max(s.still, now.Sub(s.moved)) // from the send on
			}
			if tr.RateBps > 0 {
				s.rates++
				if tr.RateBps > 2*linkRate/8 {
					t.Errorf("%s shows %.0f B/s on a link of %d B/s", s.a.name, tr.RateBps, linkRate/8)
				}
			}
		}
	}
	sameFile(t, src, filepath.Join(bob.downloads(), "slow.bin"))
	for _, s := range sides {
		t.Logf("%s: the count stood still for %s at most; a rate was shown in %d samples", s.a.name, s.still.Round(100*time.Millisecond), s.rates)
		if s.still > maxStill {
			t.Errorf("%s: the shown count stood still for %s while the file moved; want at most %s", s.a.name, s.still.Round(time.Second), maxStill)
		}
		if s.rates == 0 {
			t.Errorf("%s never showed a rate", s.a.name)
		}
	}
}
