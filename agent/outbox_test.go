package agent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/testutil"
)

// testNode is an agent of an outbox test.
type testNode struct {
	name   string
	home   string
	client *control.Client
	stop   func()
	id     control.IDInfo
}

func (n *testNode) outbox() string    { return ResolvePaths(n.home).Outbox }
func (n *testNode) downloads() string { return ResolvePaths(n.home).Downloads }

// startNode starts an agent whose config is the default changed by set
// ("key", "value", ...).
func startNode(t *testing.T, name, home string, set ...string) *testNode {
	t.Helper()
	writeConfig(t, home, set...)
	c, stop := startAgent(t, name, home)
	id, err := c.ID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return &testNode{name: name, home: home, client: c, stop: stop, id: id}
}

// outboxNodes starts agents and makes the first a peer of each other.
// The quiet period is short, to keep the tests quick.
func outboxNodes(t *testing.T, names ...string) []*testNode {
	t.Helper()
	nodes := make([]*testNode, len(names))
	for i, name := range names {
		nodes[i] = startNode(t, name, t.TempDir(), "quiet_period", "300ms")
	}
	for _, o := range nodes[1:] {
		connect(t, nodes[0], o)
	}
	return nodes
}

func connect(t *testing.T, a, b *testNode) {
	t.Helper()
	if _, err := a.client.Connect(t.Context(), b.id.ConnectionString); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.Connect(t.Context(), a.id.ConnectionString); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// hasContent reports whether path holds exactly want.
func hasContent(path string, want []byte) bool {
	got, err := os.ReadFile(path)
	return err == nil && bytes.Equal(got, want)
}

// listDir names what is in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestOutboxRootGoesToEveryPeerThenToSent(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	nodes := outboxNodes(t, "alice", "bob", "carol")
	alice, bob, carol := nodes[0], nodes[1], nodes[2]
	if got := listDir(t, alice.outbox()); !slices.Equal(got, []string{"Sent", "bob", "carol"}) {
		t.Fatalf("outbox holds %v, want Sent and a folder per peer", got)
	}
	report := bytes.Repeat([]byte("report "), 300_000) // 2 MiB: several chunks
	writeFile(t, filepath.Join(alice.outbox(), "report.pdf"), report)
	writeFile(t, filepath.Join(alice.outbox(), "album", "a.jpg"), []byte("a"))
	writeFile(t, filepath.Join(alice.outbox(), "album", "deep", "b.jpg"), []byte("b"))

	sent := filepath.Join(alice.outbox(), "Sent", "report.pdf")
	testutil.Until(t, ctx, "report.pdf in Sent", func() bool { return exists(sent) })
	// It moved only once both receivers had it.
	for _, n := range []*testNode{bob, carol} {
		if !hasContent(filepath.Join(n.downloads(), "report.pdf"), report) {
			t.Fatalf("report.pdf moved to Sent before %s had it", n.name)
		}
	}
	if !hasContent(sent, report) || exists(filepath.Join(alice.outbox(), "report.pdf")) {
		t.Fatal("Sent/report.pdf is not the file, or the outbox still has it")
	}
	testutil.Until(t, ctx, "album in Sent", func() bool { return exists(filepath.Join(alice.outbox(), "Sent", "album", "deep", "b.jpg")) })
	for _, n := range []*testNode{bob, carol} {
		if !hasContent(filepath.Join(n.downloads(), "album", "deep", "b.jpg"), []byte("b")) {
			t.Fatalf("%s lacks album/deep/b.jpg", n.name)
		}
	}
	st, err := alice.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Transfers) != 6 {
		t.Fatalf("alice has %d transfers, want 6 (3 files x 2 peers): %+v", len(st.Transfers), st.Transfers)
	}
	if len(st.Queue) != 0 {
		t.Fatalf("queue not empty after delivery: %+v", st.Queue)
	}
}

func TestOutboxPeerFolderGoesToThatPeerOnly(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	nodes := outboxNodes(t, "alice", "bob", "carol")
	alice, bob, carol := nodes[0], nodes[1], nodes[2]
	writeFile(t, filepath.Join(alice.outbox(), "bob", "photo.jpg"), []byte("for bob"))
	testutil.Until(t, ctx, "bob's photo", func() bool { return hasContent(filepath.Join(bob.downloads(), "photo.jpg"), []byte("for bob")) })
	testutil.Until(t, ctx, "Sent/bob/photo.jpg", func() bool { return exists(filepath.Join(alice.outbox(), "Sent", "bob", "photo.jpg")) })
	// A file for everyone, dropped after, arrives at carol: had the photo
	// gone to carol too, it would have been there first.
	writeFile(t, filepath.Join(alice.outbox(), "all.txt"), []byte("all"))
	testutil.Until(t, ctx, "all.txt at carol", func() bool { return exists(filepath.Join(carol.downloads(), "all.txt")) })
	if got := listDir(t, carol.downloads()); !slices.Equal(got, []string{".punchdrop", "all.txt"}) {
		t.Fatalf("carol's downloads: %v, want all.txt only", got)
	}
}

// TestOutboxFolderMadeBeforeItsPeer: files put in Outbox/carol/ before
// carol is a peer wait as a drop for everyone; once carol is added within
// the quiet period, they go to her alone, and the folder is not sent to
// the others.
func TestOutboxFolderMadeBeforeItsPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	alice := startNode(t, "alice", t.TempDir(), "quiet_period", "3s")
	bob := startNode(t, "bob", t.TempDir())
	carol := startNode(t, "carol", t.TempDir())
	connect(t, alice, bob)
	writeFile(t, filepath.Join(alice.outbox(), "carol", "photo.jpg"), []byte("for carol"))
	connect(t, alice, carol)
	testutil.Until(t, ctx, "carol's photo", func() bool { return hasContent(filepath.Join(carol.downloads(), "photo.jpg"), []byte("for carol")) })
	writeFile(t, filepath.Join(alice.outbox(), "all.txt"), []byte("all"))
	testutil.Until(t, ctx, "all.txt at bob", func() bool { return exists(filepath.Join(bob.downloads(), "all.txt")) })
	if got := listDir(t, bob.downloads()); !slices.Equal(got, []string{".punchdrop", "all.txt"}) {
		t.Fatalf("bob's downloads: %v, want all.txt only", got)
	}
}

func TestOutboxIgnoresTemporaryFiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	nodes := outboxNodes(t, "alice", "bob")
	alice, bob := nodes[0], nodes[1]
	temps := []string{".hidden", "movie.mkv.part", "setup.exe.crdownload", "~$report.docx", ".#notes.txt", ".notes.txt.swp", "data.tmp", "backup~", "#draft#", "4913", "x.partial"}
	for _, name := range temps {
		writeFile(t, filepath.Join(alice.outbox(), name), []byte(name))
	}
	writeFile(t, filepath.Join(alice.outbox(), "folder", "keep.txt"), []byte("keep"))
	writeFile(t, filepath.Join(alice.outbox(), "folder", "skip.txt.crdownload"), []byte("skip"))
	writeFile(t, filepath.Join(alice.outbox(), "real.txt"), []byte("real"))
	testutil.Until(t, ctx, "real.txt and the folder delivered", func() bool {
		return exists(filepath.Join(alice.outbox(), "Sent", "real.txt")) && exists(filepath.Join(alice.outbox(), "Sent", "folder"))
	})
	if exists(filepath.Join(bob.downloads(), "folder", "skip.txt.crdownload")) || !exists(filepath.Join(bob.downloads(), "folder", "keep.txt")) {
		t.Fatal("a partial download inside a folder was sent, or the folder's real file was not")
	}
	time.Sleep(time.Second) // several quiet periods: time enough for a wrong pick-up
	for _, name := range temps {
		if !exists(filepath.Join(alice.outbox(), name)) || exists(filepath.Join(bob.downloads(), name)) {
			t.Errorf("%s was sent or moved", name)
		}
	}
}

// TestOutboxWaitsForSlowWrites writes a file in pieces over 10 s, slower
// than any copy a quiet period of 2 s could mistake for finished only if
// it paused: it is sent once, complete.
func TestOutboxWaitsForSlowWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 15 s")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	alice := startNode(t, "alice", t.TempDir()) // default quiet period
	bob := startNode(t, "bob", t.TempDir())
	connect(t, alice, bob)
	path := filepath.Join(alice.outbox(), "slow.bin")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := range 20 {
		piece := bytes.Repeat([]byte{byte(i)}, 64<<10)
		if _, err := f.Write(piece); err != nil {
			t.Fatal(err)
		}
		want = append(want, piece...)
		time.Sleep(500 * time.Millisecond)
		if exists(filepath.Join(bob.downloads(), "slow.bin")) {
			t.Fatalf("sent after %d of 20 pieces", i+1)
		}
	}
	f.Close()
	testutil.Until(t, ctx, "slow.bin delivered", func() bool { return exists(filepath.Join(alice.outbox(), "Sent", "slow.bin")) })
	if !hasContent(filepath.Join(bob.downloads(), "slow.bin"), want) {
		t.Fatal("bob's slow.bin is not the whole file")
	}
	st, _ := alice.client.Status(ctx)
	if len(st.Transfers) != 1 {
		t.Fatalf("slow.bin sent %d times: %+v", len(st.Transfers), st.Transfers)
	}
	if got := listDir(t, bob.downloads()); !slices.Equal(got, []string{".punchdrop", "slow.bin"}) {
		t.Fatalf("bob's downloads: %v", got)
	}
}

// dropMany writes n small files into dir at once.
func dropMany(t *testing.T, dir string, n int) {
	t.Helper()
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("small-%04d.txt", i)), fmt.Appendf(nil, "file %d", i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkAllOnce fails unless downloads has the n files of dropMany, each
// once with its content, and no other.
func checkAllOnce(t *testing.T, downloads string, n int) {
	t.Helper()
	got := listDir(t, downloads)
	if len(got) != n+1 { // and .punchdrop
		t.Fatalf("downloads has %d entries, want %d files", len(got)-1, n)
	}
	for i := range n {
		if !hasContent(filepath.Join(downloads, fmt.Sprintf("small-%04d.txt", i)), fmt.Appendf(nil, "file %d", i)) {
			t.Fatalf("small-%04d.txt missing or wrong", i)
		}
	}
}

func TestOutboxThousandFilesAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	nodes := outboxNodes(t, "alice", "bob")
	alice, bob := nodes[0], nodes[1]
	dropMany(t, alice.outbox(), 1000)
	sent := filepath.Join(alice.outbox(), "Sent")
	testutil.Until(t, ctx, "1000 files in Sent", func() bool { return len(listDir(t, sent)) == 1000 })
	checkAllOnce(t, bob.downloads(), 1000)
	if got := listDir(t, alice.outbox()); !slices.Equal(got, []string{"Sent", "bob"}) {
		t.Fatalf("outbox still holds %d entries", len(got))
	}
}

// TestOutboxOverflowLosesNothing makes the kernel's inotify queue tiny so
// that dropping many files overflows it: the rescan that follows finds
// them all.
func TestOutboxOverflowLosesNothing(t *testing.T) {
	const knob = "/proc/sys/fs/inotify/max_queued_events"
	old, err := os.ReadFile(knob)
	if err == nil {
		err = os.WriteFile(knob, []byte("16"), 0)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot shrink the inotify queue (needs root): %v", err)
		}
		t.Skipf("cannot shrink the inotify queue (needs root): %v", err)
	}
	// The limit applies to inotify instances made from now on, the
	// agents' here (and, harmlessly, any made at the same moment by other
	// test packages: a tiny queue only makes a watcher rescan).
	restore := sync.OnceFunc(func() { os.WriteFile(knob, old, 0) })
	t.Cleanup(restore)
	nodes := outboxNodes(t, "alice", "bob")
	alice, bob := nodes[0], nodes[1]
	// Alice's watcher is made once her agent runs, which may be after
	// outboxNodes returns: the knob stays until she says she watches.
	testutil.WaitFor(t, 30*time.Second, "alice to watch her outbox", func() bool {
		log, _ := os.ReadFile(ResolvePaths(alice.home).Log)
		return strings.Contains(string(log), "watching outbox")
	})
	restore()
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	dropMany(t, alice.outbox(), 300)
	sent := filepath.Join(alice.outbox(), "Sent")
	testutil.Until(t, ctx, "300 files in Sent", func() bool { return len(listDir(t, sent)) == 300 })
	checkAllOnce(t, bob.downloads(), 300)
	log, _ := os.ReadFile(ResolvePaths(alice.home).Log)
	if !strings.Contains(string(log), "too many changes at once") {
		t.Fatal("the inotify queue did not overflow; the test proves nothing")
	}
}

func TestOutboxFilesDroppedWhileAgentDown(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	nodes := outboxNodes(t, "alice", "bob")
	alice, bob := nodes[0], nodes[1]
	writeFile(t, filepath.Join(alice.outbox(), "first.txt"), []byte("first"))
	testutil.Until(t, ctx, "first.txt in Sent", func() bool { return exists(filepath.Join(alice.outbox(), "Sent", "first.txt")) })
	alice.stop()
	writeFile(t, filepath.Join(alice.outbox(), "while-down.txt"), []byte("down"))
	writeFile(t, filepath.Join(alice.outbox(), "bob", "for-bob.txt"), []byte("bob"))
	alice = startNode(t, "alice", alice.home)
	testutil.Until(t, ctx, "files sent after start", func() bool {
		return exists(filepath.Join(alice.outbox(), "Sent", "while-down.txt")) && exists(filepath.Join(alice.outbox(), "Sent", "bob", "for-bob.txt"))
	})
	// The scan at start-up took the new files, and not the Sent folder.
	time.Sleep(time.Second)
	if got := listDir(t, bob.downloads()); !slices.Equal(got, []string{".punchdrop", "first.txt", "for-bob.txt", "while-down.txt"}) {
		t.Fatalf("bob's downloads: %v", got)
	}
	if !hasContent(filepath.Join(bob.downloads(), "while-down.txt"), []byte("down")) || !hasContent(filepath.Join(bob.downloads(), "for-bob.txt"), []byte("bob")) {
		t.Fatal("a file dropped while the agent was down arrived wrong")
	}
}

func TestOutboxWaitsForOfflinePeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	nodes := outboxNodes(t, "alice", "bob")
	alice, bob := nodes[0], nodes[1]
	bob.stop()
	writeFile(t, filepath.Join(alice.outbox(), "later.txt"), []byte("later"))
	testutil.Until(t, ctx, "later.txt queued", func() bool {
		st, err := alice.client.Status(ctx)
		return err == nil && len(st.Queue) == 1 && st.Queue[0].File == filepath.Join(alice.outbox(), "later.txt") && st.Queue[0].PeerName == "bob"
	})
	time.Sleep(3 * time.Second) // a failed attempt or two, with back-off
	if !exists(filepath.Join(alice.outbox(), "later.txt")) {
		t.Fatal("later.txt left the outbox while bob was offline")
	}
	bob = startNode(t, "bob", bob.home)
	testutil.Until(t, ctx, "later.txt at bob", func() bool { return hasContent(filepath.Join(bob.downloads(), "later.txt"), []byte("later")) })
	testutil.Until(t, ctx, "later.txt in Sent", func() bool { return exists(filepath.Join(alice.outbox(), "Sent", "later.txt")) })
}

func TestOutboxAfterSendKeepAndDelete(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	nodes := outboxNodes(t, "alice", "bob")
	alice, bob := nodes[0], nodes[1]
	setConfig(t, alice, "after_send", "keep")
	kept := filepath.Join(alice.outbox(), "kept.txt")
	writeFile(t, kept, []byte("v1"))
	testutil.Until(t, ctx, "kept.txt at bob", func() bool { return exists(filepath.Join(bob.downloads(), "kept.txt")) })
	// Restarting does not send it again; a new version is sent.
	alice.stop()
	alice = startNode(t, "alice", alice.home)
	time.Sleep(time.Second)
	if exists(filepath.Join(bob.downloads(), "kept (1).txt")) {
		t.Fatal("a kept file was sent again after a restart")
	}
	writeFile(t, kept, []byte("v2"))
	testutil.Until(t, ctx, "the new version at bob", func() bool { return hasContent(filepath.Join(bob.downloads(), "kept (1).txt"), []byte("v2")) })
	if !hasContent(kept, []byte("v2")) {
		t.Fatal("a kept file left the outbox")
	}

	setConfig(t, alice, "after_send", "delete")
	gone := filepath.Join(alice.outbox(), "gone.txt")
	writeFile(t, gone, []byte("bye"))
	testutil.Until(t, ctx, "gone.txt deleted after delivery", func() bool { return !exists(gone) })
	if !hasContent(filepath.Join(bob.downloads(), "gone.txt"), []byte("bye")) || exists(filepath.Join(alice.outbox(), "Sent", "gone.txt")) {
		t.Fatal("gone.txt was deleted before delivery, or moved")
	}
}

// setConfig changes one key and reloads the agent, as `config set` does.
func setConfig(t *testing.T, n *testNode, key, value string) {
	t.Helper()
	writeConfig(t, n.home, key, value)
	if res, err := n.client.ReloadConfig(t.Context()); err != nil || !slices.Contains(res.Applied, key) {
		t.Fatalf("reload after setting %s: %+v, %v", key, res, err)
	}
}

func TestOutboxFollowsPeerRenameAndRemove(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	nodes := outboxNodes(t, "alice", "bob")
	alice, bob := nodes[0], nodes[1]
	if _, err := alice.client.RenamePeer(ctx, "bob", "robert"); err != nil {
		t.Fatal(err)
	}
	if got := listDir(t, alice.outbox()); !slices.Equal(got, []string{"Sent", "robert"}) {
		t.Fatalf("outbox after rename: %v", got)
	}
	writeFile(t, filepath.Join(alice.outbox(), "robert", "r.txt"), []byte("r"))
	testutil.Until(t, ctx, "r.txt at bob", func() bool { return exists(filepath.Join(bob.downloads(), "r.txt")) })

	// With downloads_per_peer, bob keeps alice's files in Downloads/alice/.
	setConfig(t, bob, "downloads_per_peer", "true")
	if _, err := alice.client.RenamePeer(ctx, "robert", "bob"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(alice.outbox(), "bob", "p.txt"), []byte("p"))
	testutil.Until(t, ctx, "Downloads/alice/p.txt at bob", func() bool { return hasContent(filepath.Join(bob.downloads(), "alice", "p.txt"), []byte("p")) })

	writeFile(t, filepath.Join(alice.outbox(), "bob", "unsent.txt"), []byte("u"))
	bob.stop() // so that unsent.txt stays unsent
	if err := alice.client.RemovePeer(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	parked := filepath.Join(alice.outbox(), "Sent", "bob (peer removed)", "unsent.txt")
	if !hasContent(parked, []byte("u")) || exists(filepath.Join(alice.outbox(), "bob")) {
		t.Fatalf("removed peer's folder: outbox %v", listDir(t, alice.outbox()))
	}
}

func TestPauseHoldsTheQueue(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	nodes := outboxNodes(t, "alice", "bob")
	alice, bob := nodes[0], nodes[1]
	if err := alice.client.Pause(ctx, true); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(alice.outbox(), "held.txt"), []byte("held"))
	writeFile(t, filepath.Join(alice.outbox(), "bob", "regret.txt"), []byte("regret"))
	testutil.Until(t, ctx, "both files queued", func() bool {
		st, err := alice.client.Status(ctx)
		return err == nil && st.Paused && len(st.Queue) == 2 && st.Queue[0].State == control.TransferQueued
	})
	time.Sleep(time.Second)
	if exists(filepath.Join(bob.downloads(), "held.txt")) {
		t.Fatal("sent while paused")
	}
	// Taken back out before it was sent: it is not sent.
	if err := os.Rename(filepath.Join(alice.outbox(), "bob", "regret.txt"), filepath.Join(t.TempDir(), "regret.txt")); err != nil {
		t.Fatal(err)
	}
	testutil.Until(t, ctx, "regret.txt cancelled", func() bool {
		st, err := alice.client.Status(ctx)
		return err == nil && len(st.Queue) == 1 && st.Queue[0].Name == "held.txt"
	})
	// The pause outlives a restart.
	alice.stop()
	alice = startNode(t, "alice", alice.home)
	testutil.Until(t, ctx, "alice back, paused, held.txt queued", func() bool {
		st, err := alice.client.Status(ctx)
		return err == nil && st.Paused && len(st.Queue) == 1
	})
	testutil.Until(t, ctx, "bob connected again", func() bool {
		peers, err := alice.client.Peers(ctx)
		return err == nil && len(peers) == 1 && peers[0].State == control.StateConnected
	})
	time.Sleep(time.Second)
	if exists(filepath.Join(bob.downloads(), "held.txt")) {
		t.Fatal("sent after a restart while paused")
	}
	if err := alice.client.Pause(ctx, false); err != nil {
		t.Fatal(err)
	}
	testutil.Until(t, ctx, "held.txt at bob after resume", func() bool { return exists(filepath.Join(bob.downloads(), "held.txt")) })
	st, _ := alice.client.Status(ctx)
	for _, tr := range st.Transfers {
		if tr.Name == "regret.txt" && (tr.State != control.TransferFailed || tr.Error != "taken out of the outbox") {
			t.Fatalf("regret.txt: %+v", tr)
		}
	}
	if exists(filepath.Join(bob.downloads(), "regret.txt")) {
		t.Fatal("a file taken out of the outbox was sent")
	}
}

// TestOutboxRemovedPeerIsNotWaitedFor: a file for two peers, one of them
// offline, waits in the outbox; once that peer is removed, the file,
// which the other has, moves to Sent.
func TestOutboxRemovedPeerIsNotWaitedFor(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	nodes := outboxNodes(t, "alice", "bob", "carol")
	alice, bob, carol := nodes[0], nodes[1], nodes[2]
	carol.stop()
	drop := filepath.Join(alice.outbox(), "both.txt")
	writeFile(t, drop, []byte("both"))
	testutil.Until(t, ctx, "both.txt at bob", func() bool { return exists(filepath.Join(bob.downloads(), "both.txt")) })
	time.Sleep(500 * time.Millisecond)
	if !exists(drop) {
		t.Fatal("both.txt left the outbox before carol had it")
	}
	if err := alice.client.RemovePeer(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	testutil.Until(t, ctx, "both.txt in Sent", func() bool { return exists(filepath.Join(alice.outbox(), "Sent", "both.txt")) })
}
