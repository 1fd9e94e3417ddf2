package agent

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/session"
	"github.com/punchdrop/punchdrop/store"
	"github.com/punchdrop/punchdrop/testutil"
)

// A damaged state file never stops the agent: it starts with a fresh
// one, says so in its log and status, keeps the peers it could read, and
// what waited in the outbox still reaches the peer.
func TestDamagedStateStartsFresh(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	nodes := outboxNodes(t, "alice", "bob")
	alice, bob := nodes[0], nodes[1]
	bob.stop()
	const name = "waiting-for-bob-0123456789.txt"
	writeFile(t, filepath.Join(alice.outbox(), name), []byte("still here"))
	testutil.Until(t, ctx, "the file queued", func() bool {
		st, err := alice.client.Status(ctx)
		return err == nil && len(st.Queue) == 1
	})
	alice.stop()

	// Garble the queued transfer's record where it lies in the file.
	path := ResolvePaths(alice.home).State
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(data, []byte(`"name":"`+name))
	if at < 0 {
		t.Fatal("record not found in state.db")
	}
	copy(data[at:], "\x00\xff{{{{\x01")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Open(path); !errors.Is(err, store.ErrDamaged) {
		t.Fatalf("Open of the garbled file = %v, want ErrDamaged", err)
	}

	alice = startNode(t, "alice", alice.home)
	st, err := alice.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Alerts) != 1 || !strings.Contains(st.Alerts[0], "damaged") || !strings.Contains(st.Alerts[0], "1 peer") {
		t.Fatalf("alerts %q, want one saying the state was damaged and 1 peer kept", st.Alerts)
	}
	moved, _ := filepath.Glob(path + ".damaged-*")
	if len(moved) != 1 {
		t.Fatalf("damaged file kept aside as %v", moved)
	}
	logged, _ := os.ReadFile(ResolvePaths(alice.home).Log)
	if !bytes.Contains(logged, []byte("STATE FILE DAMAGED")) {
		t.Fatal("the log does not say the state file was damaged")
	}
	bob = startNode(t, "bob", bob.home)
	testutil.Until(t, ctx, "the file at bob", func() bool { return hasContent(filepath.Join(bob.downloads(), name), []byte("still here")) })
}

// Two peers never share a name: the second gets a suffix, and the answer
// says which name it asked for.
func TestPeerNamesStayUnique(t *testing.T) {
	ctx := t.Context()
	alice, _ := runAgent(t, "alice")
	bob1, _ := runAgent(t, "bob")
	bob2, _ := runAgent(t, "bob")
	bob3, _ := runAgent(t, "BOB")
	var got []control.PeerInfo
	for _, c := range []*control.Client{bob1, bob2, bob3} {
		id, err := c.ID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p, err := alice.Connect(ctx, id.ConnectionString)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	want := []struct{ name, taken string }{{"bob", ""}, {"bob-2", "bob"}, {"BOB-3", "BOB"}}
	for i, w := range want {
		if got[i].Name != w.name || got[i].NameTaken != w.taken {
			t.Errorf("peer %d: name %q (taken %q), want %q (taken %q)", i, got[i].Name, got[i].NameTaken, w.name, w.taken)
		}
	}
	// Connecting an existing peer again keeps its own name.
	id, _ := bob2.ID(ctx)
	if p, err := alice.Connect(ctx, id.ConnectionString); err != nil || p.Name != "bob-2" || p.NameTaken != "bob" {
		t.Fatalf("reconnect: %+v, %v", p, err)
	}
	if _, err := alice.RenamePeer(ctx, "bob-2", "Bob"); err == nil {
		t.Fatal("rename to another peer's name (other case) was allowed")
	}
}

// Text from a peer is cleaned before it is stored: no terminal escapes,
// no bidi tricks.
func TestMessagesAreCleanedOnReceipt(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	alice, bob, _ := connectPair(t, ctx)
	evil := "hi\x1b]0;owned\x07\x1b[31m red\u202Etxt.sh\nsecond line\ttab"
	if err := alice.SendMessage(ctx, control.MsgRequest{Peer: "bob", Text: evil}); err != nil {
		t.Fatal(err)
	}
	msgs, err := bob.Messages(ctx)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("messages %v, %v", msgs, err)
	}
	if want := "hi\uFFFD]0;owned\uFFFD\uFFFD[31m red\uFFFDtxt.sh\nsecond line\ttab"; msgs[0].Text != want {
		t.Fatalf("stored %q, want %q", msgs[0].Text, want)
	}
}

// The control socket lives in a folder only its user may write to, and
// is 0600 from its first moment.
func TestControlSocketFolder(t *testing.T) {
	base := t.TempDir()
	private := filepath.Join(base, "private")
	open := filepath.Join(base, "open")
	link := filepath.Join(base, "link")
	for _, d := range []string{private, open} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(open, 0o777)
	os.Symlink(private, link)
	cases := []struct {
		dir  string
		want string // in the error; empty for none
	}{
		{private, ""},
		{open, "others may write"},
		{link, "not a folder"},
	}
	if os.Geteuid() == 0 {
		theirs := filepath.Join(base, "theirs")
		os.Mkdir(theirs, 0o700)
		if err := os.Chown(theirs, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct{ dir, want string }{theirs, "belongs to another user"})
	} else if os.Getenv("CI") == "true" {
		t.Fatal("CI runs as root: the case of a folder of another user needs it")
	}
	for _, c := range cases {
		ln, err := listenControl(filepath.Join(c.dir, "control.sock"))
		if c.want == "" {
			if err != nil {
				t.Fatalf("%s: %v", c.dir, err)
			}
			fi, err := os.Stat(filepath.Join(c.dir, "control.sock"))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("socket mode %v, %v", fi.Mode().Perm(), err)
			}
			ln.Close()
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			ln.Close()
			t.Errorf("%s: err %v, want %q", c.dir, err, c.want)
		}
	}
}

// Clients find connection strings by the scheme control names; it must be
// the one session writes.
func TestConnStringSchemeAgrees(t *testing.T) {
	if control.ConnStringScheme != session.ConnStringScheme {
		t.Fatalf("control says %q, session writes %q", control.ConnStringScheme, session.ConnStringScheme)
	}
}
