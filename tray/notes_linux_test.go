//go:build linux

package tray

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
)

// testApp is an app whose notifications stay in its queue, for reading.
func testApp() *app {
	return &app{
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		notes:   &notifier{log: slog.New(slog.NewTextHandler(io.Discard, nil)), queue: make(chan note, 1024)},
		knocked: map[string]time.Time{},
		alerted: map[string]bool{},
	}
}

func queued(a *app) []note {
	var out []note
	for {
		select {
		case nt := <-a.notes.queue:
			out = append(out, nt)
		default:
			return out
		}
	}
}

// A burst of requests (a stranger minting keys) is one notification on
// screen: the first has Accept and Decline, the rest replace it with a
// count; a request seen before is not shown again.
func TestRequestsShareANotification(t *testing.T) {
	a := testApp()
	now := time.Unix(1000, 0)
	for i := range 40 {
		p := control.PeerInfo{NodeID: fmt.Sprintf("NODE%04dXXXXXXXX", i), Name: fmt.Sprintf("n%d", i), State: control.StatePending, Addr: "198.18.0.9:1"}
		a.notifyRequest(p, now.Add(time.Duration(i)*100*time.Millisecond))
		a.notifyRequest(p, now.Add(time.Duration(i)*100*time.Millisecond)) // the same again
	}
	notes := queued(a)
	if len(notes) != 40 {
		t.Fatalf("%d notifications queued, want 40 (one per new request)", len(notes))
	}
	for i, nt := range notes {
		if nt.key != notes[0].key {
			t.Fatalf("notification %d has key %q, want %q: it would show beside the first, not replace it", i, nt.key, notes[0].key)
		}
	}
	if len(notes[0].actions) != 2 || len(notes[39].actions) != 0 {
		t.Fatalf("actions: first %d, last %d; want Accept/Decline on the first only", len(notes[0].actions), len(notes[39].actions))
	}
	if want := "40 nodes want to be your peer"; notes[39].summary != want || !strings.Contains(notes[39].body, "n0, n1, n2 and 37 more") {
		t.Fatalf("last notification %q / %q", notes[39].summary, notes[39].body)
	}
	// A request after a quiet spell gets a notification of its own.
	a.notifyRequest(control.PeerInfo{NodeID: "LATEXXXXXXXXXXXX", Name: "late"}, now.Add(time.Hour))
	if late := queued(a); len(late) != 1 || late[0].key == notes[0].key || len(late[0].actions) != 2 {
		t.Fatalf("a later request: %+v", late)
	}
	// The memory keeps what is still pending, and what is recent.
	a.peers = []control.PeerInfo{{NodeID: "NODE0001XXXXXXXX", State: control.StatePending}}
	a.forgetKnocks(now.Add(time.Hour + time.Minute))
	if len(a.knocked) != 2 {
		t.Fatalf("remembered %d requests after tidying, want the pending one and the recent one", len(a.knocked))
	}
}

func TestAlertsShownOnce(t *testing.T) {
	a := testApp()
	a.notifyAlert("The state file was damaged")
	a.notifyAlert("The state file was damaged")
	if notes := queued(a); len(notes) != 1 || !strings.Contains(notes[0].body, "damaged") {
		t.Fatalf("notes %+v", notes)
	}
}
