package store

import (
	"fmt"
	"testing"
	"time"
)

func TestOutboxQueueIsIdempotent(t *testing.T) {
	s, _ := openTemp(t)
	now := time.Now().UTC()
	item := func(id string) Outgoing {
		return Outgoing{ID: id, Peer: "P", Path: "/o/a.txt", Name: "a.txt", State: OutgoingQueued, Queued: now}
	}
	entry := func(stamp string) OutboxEntry {
		return OutboxEntry{Key: "a.txt", Path: "/o/a.txt", Stamp: stamp, Peers: []string{"P"}, State: OutboxQueued, Added: now}
	}
	steps := []struct {
		what       string
		stamp      string
		id         string
		before     func()
		wantQueued bool
		wantIDs    int // outgoing rows afterwards
	}{
		{"first sight", "s1", "01", nil, true, 1},
		{"seen again", "s1", "02", nil, false, 1},
		{"changed while queued", "s2", "03", nil, false, 1},
		{"same after kept", "s2", "04", func() {
			if err := s.SettleOutbox(nil, []string{"a.txt"}); err != nil {
				t.Fatal(err)
			}
		}, false, 1},
		{"new version after kept", "s3", "05", nil, true, 2},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		got, err := s.QueueOutbox(OutboxDrop{entry(st.stamp), []Outgoing{item(st.id)}})
		if err != nil || (len(got) == 1) != st.wantQueued {
			t.Fatalf("%s: QueueOutbox = %v, %v; want %v", st.what, got, err, st.wantQueued)
		}
		if all := allOutgoing(t, s); len(all) != st.wantIDs {
			t.Fatalf("%s: %d outgoing rows, want %d", st.what, len(all), st.wantIDs)
		}
	}
	e, delivered, err := s.OutboxProgress("a.txt")
	if err != nil || delivered || e.Stamp != "s3" || len(e.Transfers) != 1 || e.Transfers[0] != "05" {
		t.Fatalf("OutboxProgress = %+v, %v, %v", e, delivered, err)
	}
	if o, err := s.OutgoingTransfer("05"); err != nil || o.Outbox != "a.txt" {
		t.Fatalf("transfer 05 = %+v, %v; want it linked to its entry", o, err)
	}
	if err := s.UpdateOutgoing("05", func(o *Outgoing) { o.State = OutgoingDone }); err != nil {
		t.Fatal(err)
	}
	if _, delivered, _ := s.OutboxProgress("a.txt"); !delivered {
		t.Fatal("entry whose every transfer is done is not delivered")
	}
}

func TestMoveOutboxFolder(t *testing.T) {
	s, _ := openTemp(t)
	now := time.Now().UTC()
	for _, key := range []string{"bob/x.txt", "bob/d", "bobby/y.txt"} {
		path := "/o/" + key
		o := Outgoing{ID: "id-" + key, Peer: "P", Path: path + "/f", Name: "f", State: OutgoingQueued, Queued: now}
		if _, err := s.QueueOutbox(OutboxDrop{OutboxEntry{Key: key, Path: path, Stamp: "s", State: OutboxQueued}, []Outgoing{o}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MoveOutboxFolder("bob", "/o/bob", "robert", "/o/robert"); err != nil {
		t.Fatal(err)
	}
	entries, _ := s.OutboxEntries()
	var keys []string
	for _, e := range entries {
		keys = append(keys, e.Key+"="+e.Path)
	}
	want := "[bobby/y.txt=/o/bobby/y.txt robert/d=/o/robert/d robert/x.txt=/o/robert/x.txt]"
	if got := fmt.Sprint(keys); got != want {
		t.Fatalf("entries after the move: %s, want %s", got, want)
	}
	o, err := s.OutgoingTransfer("id-bob/d")
	if err != nil || o.Path != "/o/robert/d/f" || o.Outbox != "robert/d" {
		t.Fatalf("moved transfer = %+v, %v", o, err)
	}
}

func TestDropOutboxPeer(t *testing.T) {
	s, _ := openTemp(t)
	out := func(id, peer string) Outgoing { return Outgoing{ID: id, Peer: peer, State: OutgoingQueued} }
	_, err := s.QueueOutbox(
		OutboxDrop{OutboxEntry{Key: "both.txt", Peers: []string{"P", "Q"}, State: OutboxQueued}, []Outgoing{out("1", "P"), out("2", "Q")}},
		OutboxDrop{OutboxEntry{Key: "p/only.txt", Peers: []string{"P"}, State: OutboxQueued}, []Outgoing{out("3", "P")}},
		OutboxDrop{OutboxEntry{Key: "q/only.txt", Peers: []string{"Q"}, State: OutboxQueued}, []Outgoing{out("4", "Q")}},
	)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := s.DropOutboxPeer("P")
	if err != nil || fmt.Sprint(changed) != "[both.txt]" {
		t.Fatalf("DropOutboxPeer = %v, %v; want [both.txt]", changed, err)
	}
	entries, _ := s.OutboxEntries()
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%s:%v:%v", e.Key, e.Peers, e.Transfers))
	}
	if want := "[both.txt:[Q]:[2] q/only.txt:[Q]:[4]]"; fmt.Sprint(got) != want {
		t.Fatalf("entries after dropping P: %v, want %s", got, want)
	}
}
