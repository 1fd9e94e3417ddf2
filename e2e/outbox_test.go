package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/agent"
	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
	"github.com/punchdrop/punchdrop/testutil"
)

func (a *agentProc) outbox() string { return agent.ResolvePaths(a.home).Outbox }

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// drop puts a file into dir the way a file manager's move does: written
// beside it, then renamed in.
func drop(t testing.TB, dir, name string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(dir), "."+name+".staging")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// TestOutboxInLab: alice behind a full-cone NAT has bob (port-restricted)
// and carol (symmetric) as peers. A file dropped into her outbox reaches
// both and then moves to Sent; one dropped into Outbox/bob/ reaches bob
// only; one dropped while carol is offline reaches her when she is back.
func TestOutboxInLab(t *testing.T) {
	l := lab.New(t)
	hosts := []*lab.Host{l.AddSite(lab.FullCone).AddHost(), l.AddSite(lab.PortRestricted).AddHost(), l.AddSite(lab.Symmetric).AddHost()}
	var nodes []*agentProc
	for i, name := range []string{"alice", "bob", "carol"} {
		home := t.TempDir()
		writeConfig(t, home, "quiet_period = \"500ms\"\n")
		nodes = append(nodes, startAgentIn(t, l, hosts[i], name, home))
	}
	alice, bob, carol := nodes[0], nodes[1], nodes[2]
	for _, o := range nodes[1:] {
		connectPair(t, alice, o)
		waitPeer(t, alice, o.nodeID(), connectTimeout, "connect", connected)
	}
	report := randomFile(t, filepath.Join(t.TempDir(), "report.pdf"), 3<<20, 1)
	data, _ := os.ReadFile(report)
	drop(t, alice.outbox(), "report.pdf", data)
	sent := filepath.Join(alice.outbox(), "Sent", "report.pdf")
	testutil.WaitFor(t, transferTimeout, "report.pdf in Sent", func() bool { return fileExists(sent) })
	for _, n := range []*agentProc{bob, carol} {
		sameFile(t, report, filepath.Join(n.downloads(), "report.pdf"))
	}
	sameFile(t, report, sent)

	drop(t, filepath.Join(alice.outbox(), "bob"), "photo.jpg", []byte("for bob only"))
	drop(t, alice.outbox(), "after.txt", []byte("for both"))
	testutil.WaitFor(t, transferTimeout, "photo.jpg and after.txt in Sent", func() bool {
		return fileExists(filepath.Join(alice.outbox(), "Sent", "bob", "photo.jpg")) && fileExists(filepath.Join(alice.outbox(), "Sent", "after.txt"))
	})
	if !fileExists(filepath.Join(bob.downloads(), "photo.jpg")) || fileExists(filepath.Join(carol.downloads(), "photo.jpg")) {
		t.Fatal("bob's photo went to the wrong peers")
	}

	// Carol is offline when a file is dropped: it waits in the outbox,
	// and reaches her when she is back.
	carol.stop()
	drop(t, alice.outbox(), "later.txt", []byte("for carol too"))
	testutil.WaitFor(t, transferTimeout, "later.txt at bob", func() bool { return fileExists(filepath.Join(bob.downloads(), "later.txt")) })
	if !fileExists(filepath.Join(alice.outbox(), "later.txt")) {
		t.Fatal("later.txt left the outbox while carol was offline")
	}
	carol = startAgentIn(t, l, hosts[2], "carol", carol.home)
	testutil.WaitFor(t, transferTimeout, "later.txt in Sent", func() bool { return fileExists(filepath.Join(alice.outbox(), "Sent", "later.txt")) })
	if !fileExists(filepath.Join(carol.downloads(), "later.txt")) {
		t.Fatal("later.txt moved to Sent before carol had it")
	}
}

// TestOutboxSurvivesKill kills the sender (kill -9) with 50 files in its
// outbox queue, some delivered and some not: after a restart every file
// arrives exactly once, none is sent again in full, and the outbox loses
// nothing.
func TestOutboxSurvivesKill(t *testing.T) {
	const files, size = 50, 1 << 20
	x := newTransferLab(t, "")
	// 100 Mbit/s: the 50 MiB take about 4 s, time to kill mid-queue.
	if err := x.siteA.SetRate(100); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	for i := range files {
		randomFile(t, filepath.Join(src, fmt.Sprintf("q%02d.bin", i)), size, uint64(100+i))
	}
	// Moved in at once, as a user moving a selection does.
	for i := range files {
		name := fmt.Sprintf("q%02d.bin", i)
		if err := os.Rename(filepath.Join(src, name), filepath.Join(x.alice.outbox(), name)); err != nil {
			t.Fatal(err)
		}
	}
	sent := filepath.Join(x.alice.outbox(), "Sent")
	testutil.WaitFor(t, transferTimeout, "10 files sent", func() bool { e, _ := os.ReadDir(sent); return len(e) >= 10 })
	x.alice.killHard()
	before, _ := os.ReadDir(sent)
	x.alice = startAgentIn(t, x.lab, x.aliceHost, "alice", x.aliceHome)
	testutil.WaitFor(t, transferTimeout, "all files sent", func() bool { e, _ := os.ReadDir(sent); return len(e) == files })

	got, _ := os.ReadDir(x.bob.downloads())
	var names []string
	for _, e := range got {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	if len(names) != files {
		t.Fatalf("bob has %d files, want each of %d exactly once: %v", len(names), files, names)
	}
	for i := range files {
		name := fmt.Sprintf("q%02d.bin", i)
		// The copy in Sent is the original, moved: compare bob's with it.
		sameFile(t, filepath.Join(sent, name), filepath.Join(x.bob.downloads(), name))
	}
	if left, _ := os.ReadDir(x.alice.outbox()); len(left) != 2 { // Sent and bob
		t.Fatalf("outbox still holds %d entries", len(left)-2)
	}
	// Every completed attempt logs the bytes it put on the wire; the
	// killed ones log nothing, and a file the receiver had whole before
	// the kill is confirmed with none. Had a delivered file been sent
	// again, the sum would exceed the files' size.
	total, n := logSum(t, x.aliceHome, regexp.MustCompile(`msg="file sent".* sent_bytes=(\d+)`))
	t.Logf("killed with %d of %d in Sent; %d attempts completed, %d bytes for %d", len(before), files, n, total, files*size)
	if total > files*size {
		t.Fatalf("%d completed attempts sent %d bytes for %d files of %d: something was sent twice", n, total, files, files*size)
	}
}

// TestAgentStopsFastWithWork sends SIGTERM to an agent in the middle of a
// transfer with more files queued: it persists its state and exits in
// under 2 s, and after a restart the files arrive.
func TestAgentStopsFastWithWork(t *testing.T) {
	x := newTransferLab(t, "")
	if err := x.siteA.SetRate(100); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		randomFile(t, filepath.Join(x.alice.outbox(), fmt.Sprintf("s%d.bin", i)), 8<<20, uint64(i))
	}
	testutil.WaitFor(t, transferTimeout, "a file moving", func() bool {
		for _, tr := range x.alice.status() {
			if tr.Done > 0 && tr.State == control.TransferSending {
				return true
			}
		}
		return false
	})
	start := time.Now()
	x.alice.cmd.Process.Signal(syscall.SIGTERM)
	<-x.alice.done
	took := time.Since(start)
	t.Logf("SIGTERM to exit: %s", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Fatalf("the agent took %s to stop, over 2 s", took)
	}
	if code := x.alice.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("agent exited with %d after SIGTERM", code)
	}
	x.alice = startAgentIn(t, x.lab, x.aliceHost, "alice", x.aliceHome)
	testutil.WaitFor(t, transferTimeout, "all five in Sent", func() bool {
		e, _ := os.ReadDir(filepath.Join(x.alice.outbox(), "Sent"))
		return len(e) == 5
	})
	got, _ := os.ReadDir(x.bob.downloads())
	var names []string
	for _, e := range got {
		names = append(names, e.Name())
	}
	want := []string{".punchdrop", "s0.bin", "s1.bin", "s2.bin", "s3.bin", "s4.bin"}
	if !slices.Equal(names, want) {
		t.Fatalf("bob's downloads: %s", strings.Join(names, ", "))
	}
}
