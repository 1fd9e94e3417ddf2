package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/session"
)

// connectPair runs two agents and makes them peers.
func connectPair(t *testing.T, ctx context.Context) (alice, bob *control.Client, bobHome string) {
	return connectPairTB(t, ctx)
}

func connectPairTB(t testing.TB, ctx context.Context) (alice, bob *control.Client, bobHome string) {
	t.Helper()
	alice, _ = runAgent(t, "alice")
	bob, bobHome = runAgent(t, "bob")
	connectAgents(t, ctx, alice, bob)
	return alice, bob, bobHome
}

// connectAgents makes two running agents peers.
func connectAgents(t testing.TB, ctx context.Context, x, y *control.Client) {
	t.Helper()
	xID, err := x.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	yID, err := y.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.Connect(ctx, yID.ConnectionString); err != nil {
		t.Fatal(err)
	}
	if _, err := y.Connect(ctx, xID.ConnectionString); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestSendFilesAndFolder(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	alice, bob, bobHome := connectPair(t, ctx)

	src := t.TempDir()
	files := map[string][]byte{
		"album/a.jpg":        bytes.Repeat([]byte("a"), 3<<20+1),
		"album/deeper/b.txt": []byte("b"),
		"album/deeper/empty": nil,
		"notes.txt":          []byte("notes"),
	}
	for name, data := range files {
		writeFile(t, filepath.Join(src, name), data)
	}
	res, err := alice.Send(ctx, control.SendRequest{Peer: "bob", Paths: []string{filepath.Join(src, "album"), filepath.Join(src, "notes.txt")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Transfers) != 4 {
		t.Fatalf("queued %+v", res.Transfers)
	}
	waitAllDone(t, ctx, alice)
	downloads := ResolvePaths(bobHome).Downloads
	for name, data := range files {
		got, err := os.ReadFile(filepath.Join(downloads, name))
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes, %v; want %d bytes", name, len(got), err, len(data))
		}
	}
	st, err := bob.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tr := range st.Transfers {
		if tr.Direction != control.DirectionIn || tr.State != control.TransferDone || tr.PeerName != "alice" || tr.Done != tr.Size {
			t.Errorf("bob's status row %+v", tr)
		}
		names = append(names, tr.Name)
	}
	slices.Sort(names)
	if want := []string{"album/a.jpg", "album/deeper/b.txt", "album/deeper/empty", "notes.txt"}; !slices.Equal(names, want) {
		t.Fatalf("bob's status names %q, want %q", names, want)
	}

	if _, err := alice.Send(ctx, control.SendRequest{Peer: "bob", Paths: []string{"relative.txt"}}); err == nil {
		t.Fatal("a relative path was accepted")
	}
	if _, err := alice.Send(ctx, control.SendRequest{Peer: "carol", Paths: []string{filepath.Join(src, "notes.txt")}}); err == nil {
		t.Fatal("an unknown peer was accepted")
	}
}

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "f.txt"), []byte("x"))
	writeFile(t, filepath.Join(dir, "tree", "a", "b.txt"), []byte("yy"))
	writeFile(t, filepath.Join(dir, "tree", "c.txt"), nil)
	os.Symlink(filepath.Join(dir, "f.txt"), filepath.Join(dir, "tree", "link"))
	os.MkdirAll(filepath.Join(dir, "emptydir"), 0o755)
	tests := []struct {
		path    string
		want    []string
		wantErr bool
	}{
		{path: filepath.Join(dir, "f.txt"), want: []string{"f.txt"}},
		{path: filepath.Join(dir, "tree"), want: []string{"tree/a/b.txt", "tree/c.txt"}},
		{path: filepath.Join(dir, "tree") + "/", want: []string{"tree/a/b.txt", "tree/c.txt"}},
		{path: filepath.Join(dir, "emptydir"), want: nil},
		{path: "f.txt", wantErr: true},
		{path: filepath.Join(dir, "missing"), wantErr: true},
	}
	for _, tt := range tests {
		files, err := expand(tt.path, nil)
		if tt.wantErr {
			if !errors.Is(err, errBadRequest) {
				t.Errorf("expand(%q) = %v, want a bad request", tt.path, err)
			}
			continue
		}
		var names []string
		for _, f := range files {
			names = append(names, f.name)
		}
		if err != nil || !slices.Equal(names, tt.want) {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.path, names, err, tt.want)
		}
	}
}

// TestTransfersWithSeveralPeersAtOnce has alice send to bob and carol
// while both send to her, all at the same time.
func TestTransfersWithSeveralPeersAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	type node struct {
		name   string
		client *control.Client
		home   string
		id     control.IDInfo
	}
	nodes := make([]*node, 3)
	for i, name := range []string{"alice", "bob", "carol"} {
		c, home := runAgent(t, name)
		id, err := c.ID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = &node{name, c, home, id}
	}
	alice, others := nodes[0], nodes[1:]
	for _, o := range others {
		if _, err := alice.client.Connect(ctx, o.id.ConnectionString); err != nil {
			t.Fatal(err)
		}
		if _, err := o.client.Connect(ctx, alice.id.ConnectionString); err != nil {
			t.Fatal(err)
		}
	}
	src := t.TempDir()
	send := func(from, to *node) string {
		name := from.name + "-to-" + to.name + ".bin"
		writeFile(t, filepath.Join(src, name), bytes.Repeat([]byte(name), 200_000))
		if _, err := from.client.Send(ctx, control.SendRequest{Peer: to.name, Paths: []string{filepath.Join(src, name)}}); err != nil {
			t.Fatal(err)
		}
		return name
	}
	want := map[*node][]string{}
	for _, o := range others {
		want[o] = append(want[o], send(alice, o))
		want[alice] = append(want[alice], send(o, alice))
	}
	for n, names := range want {
		for _, name := range names {
			path := filepath.Join(ResolvePaths(n.home).Downloads, name)
			for {
				got, err := os.ReadFile(path)
				if err == nil {
					if want, _ := os.ReadFile(filepath.Join(src, name)); !bytes.Equal(got, want) {
						t.Fatalf("%s differs", path)
					}
					break
				}
				select {
				case <-ctx.Done():
					st, _ := n.client.Status(context.Background())
					t.Fatalf("%s never arrived; %s's transfers: %+v", name, n.name, st.Transfers)
				case <-time.After(50 * time.Millisecond):
				}
			}
		}
	}
}

// waitAllDone polls an agent's status until every transfer is done.
func waitAllDone(t testing.TB, ctx context.Context, c *control.Client) {
	t.Helper()
	for {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, tr := range st.Transfers {
			if tr.State == control.TransferFailed {
				t.Fatalf("transfer failed: %+v", tr)
			}
			if tr.State == control.TransferDone {
				done++
			}
		}
		if done == len(st.Transfers) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("not all done: %d of %d", done, len(st.Transfers))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestMoreStreamsThanQUICAllowsAtOnce sends more files and messages than
// QUIC's limit of 100 open streams: each must release its stream.
func TestMoreStreamsThanQUICAllowsAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	alice, bob, _ := connectPair(t, ctx)
	dir := filepath.Join(t.TempDir(), "many")
	for i := range 150 {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("%03d", i)), []byte{byte(i)})
	}
	if _, err := alice.Send(ctx, control.SendRequest{Peer: "bob", Paths: []string{dir}}); err != nil {
		t.Fatal(err)
	}
	waitAllDone(t, ctx, alice)
	for i := range 120 {
		if err := bob.SendMessage(ctx, control.MsgRequest{Peer: "alice", Text: fmt.Sprint(i)}); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}

func TestRenameAndRemovePeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	alice, _, _ := connectPair(t, ctx)
	p, err := alice.RenamePeer(ctx, "bob", "bobby")
	if err != nil || p.Name != "bobby" {
		t.Fatalf("rename = %+v, %v", p, err)
	}
	if err := alice.SendMessage(ctx, control.MsgRequest{Peer: "bobby", Text: "by the new name"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "tab\there", " padded"} {
		if _, err := alice.RenamePeer(ctx, "bobby", bad); err == nil {
			t.Errorf("rename to %q accepted", bad)
		}
	}
	if _, err := alice.RenamePeer(ctx, "nobody", "x"); err == nil {
		t.Error("renaming an unknown peer succeeded")
	}

	// A file queued for a peer that cannot be reached fails, instead of
	// waiting for ever, once that peer is removed.
	ghost, err := session.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	ghostString := session.ConnString{ID: ghost.ID, Public: netip.MustParseAddrPort("127.0.0.1:9"), Name: "ghost"}.String()
	if _, err := alice.Connect(ctx, ghostString); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "late.txt")
	writeFile(t, src, []byte("late"))
	if _, err := alice.Send(ctx, control.SendRequest{Peer: "ghost", Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	if err := alice.RemovePeer(ctx, "ghost"); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := alice.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Transfers) == 1 && st.Transfers[0].State == control.TransferFailed && st.Transfers[0].Error == "peer removed" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("a file for a removed peer: %+v", st.Transfers)
		case <-time.After(50 * time.Millisecond):
		}
	}
	// Let the worker notice before the agent stops.
	time.Sleep(100 * time.Millisecond)
	st, _ := alice.Status(ctx)
	if st.Transfers[0].State != control.TransferFailed {
		t.Fatalf("the removed peer's file was queued again: %+v", st.Transfers[0])
	}

	if err := alice.RemovePeer(ctx, "bobby"); err != nil {
		t.Fatal(err)
	}
	peers, err := alice.Peers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		if p.State != control.StatePending { // bob still knocks: that is a request now
			t.Fatalf("peers after remove: %+v", peers)
		}
	}
	if _, err := alice.Send(ctx, control.SendRequest{Peer: "bobby", Paths: []string{src}}); err == nil {
		t.Fatal("sending to a removed peer was accepted")
	}
	if err := alice.RemovePeer(ctx, "bobby"); err == nil {
		t.Fatal("removing twice succeeded")
	}
}

// reloadWith changes keys of the config in home and has the agent reload
// it; it returns the keys the agent applied.
func reloadWith(t testing.TB, ctx context.Context, c *control.Client, home string, kv ...string) []string {
	t.Helper()
	writeConfig(t, home, kv...)
	res, err := c.ReloadConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Restarting {
		t.Fatalf("reload of %q restarts the agent", kv)
	}
	return res.Applied
}

// TestDiskLimitsApplyOnReload: min_free_space and max_staged_per_peer
// take effect when the config is reloaded, without a restart: a reserve
// larger than any disk makes bob refuse a file for want of space (the
// file waits at alice's), and once it is lowered the file arrives.
func TestDiskLimitsApplyOnReload(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	alice, bob, bobHome := connectPair(t, ctx)
	applied := reloadWith(t, ctx, bob, bobHome, "min_free_space", "1000TiB", "max_staged_per_peer", "1GiB")
	if !slices.Equal(applied, []string{"min_free_space", "max_staged_per_peer"}) {
		t.Fatalf("applied %q", applied)
	}
	if info, err := bob.Config(ctx); err != nil || info.MinFreeSpace != "1000TiB" || info.MaxStagedPerPeer != "1GiB" {
		t.Fatalf("bob's config: %+v, %v", info, err)
	}
	src := filepath.Join(t.TempDir(), "later.bin")
	writeFile(t, src, bytes.Repeat([]byte("x"), 10<<10))
	if _, err := alice.Send(ctx, control.SendRequest{Peer: "bob", Paths: []string{src}}); err != nil {
		t.Fatal(err)
	}
	for refused := false; !refused; {
		st, err := alice.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range st.Transfers {
			refused = refused || strings.Contains(tr.Error, "disk space")
			if tr.State == control.TransferDone {
				t.Fatalf("delivered despite a reserve larger than the disk: %+v", tr)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no refusal for want of space: %+v", st.Transfers)
		case <-time.After(20 * time.Millisecond):
		}
	}
	reloadWith(t, ctx, bob, bobHome, "min_free_space", "0")
	waitAllDone(t, ctx, alice)
	if _, err := os.Stat(filepath.Join(ResolvePaths(bobHome).Downloads, "later.bin")); err != nil {
		t.Fatal(err)
	}
}

// TestTransferIDsSortByTime: IDs made later sort after earlier ones, and
// two made in the same millisecond differ.
func TestTransferIDsSortByTime(t *testing.T) {
	now := time.Now()
	a, b, later := newTransferID(now), newTransferID(now), newTransferID(now.Add(time.Millisecond))
	if a == b {
		t.Fatal("two IDs of one millisecond are equal")
	}
	if max(a.String(), b.String()) >= later.String() {
		t.Fatalf("%s and %s do not sort before %s, made a millisecond later", a, b, later)
	}
}
