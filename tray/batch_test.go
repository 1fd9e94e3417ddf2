package tray

import (
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
)

func received(name, path string, size int64) control.TransferInfo {
	return control.TransferInfo{PeerName: "bob", Direction: control.DirectionIn, State: control.TransferDone, Name: name, Path: path, Size: size}
}

func TestBatchText(t *testing.T) {
	now := time.Now()
	one := &batch{kind: batchReceived, peer: "bob"}
	one.add(received("report.pdf", "/home/a/Downloads/report.pdf", 2048), now)
	if s, b := one.text(); s != "Received report.pdf" || b != "2.0 KiB, from bob" {
		t.Errorf("one file: %q / %q", s, b)
	}
	if p, ok := one.openTarget(); !ok || p != "/home/a/Downloads/report.pdf" {
		t.Errorf("one file opens %q, %v", p, ok)
	}

	folder := &batch{kind: batchReceived, peer: "bob"}
	folder.add(received("album (1)/a.jpg", "/dl/album (1)/a.jpg", 1024), now)
	folder.add(received("album (1)/deeper/b.jpg", "/dl/album (1)/deeper/b.jpg", 1024), now)
	if s, b := folder.text(); s != "Received folder album (1)" || b != "2 files, 2.0 KiB, from bob" {
		t.Errorf("folder: %q / %q", s, b)
	}
	if p, _ := folder.openTarget(); p != "/dl/album (1)" {
		t.Errorf("folder opens %q", p)
	}
	if got := folder.showTargets(); len(got) != 1 || got[0] != "/dl/album (1)" {
		t.Errorf("folder shows %q", got)
	}

	many := &batch{kind: batchReceived, peer: "bob"}
	for _, n := range []string{"a.txt", "b.txt", "c/d.txt", "e.txt", "f.txt"} {
		many.add(received(n, "/dl/"+n, 1), now)
	}
	if s, b := many.text(); s != "Received 5 files" || b != "a.txt, b.txt, c and 2 more (5 B), from bob" {
		t.Errorf("many: %q / %q", s, b)
	}
	if p, _ := many.openTarget(); p != "/dl" {
		t.Errorf("many opens %q, want the downloads folder", p)
	}
	if got := many.showTargets(); len(got) != 5 {
		t.Errorf("many shows %q", got)
	}

	failed := &batch{kind: batchFailedOut, peer: "carol"}
	failed.add(control.TransferInfo{Name: "x.bin", State: control.TransferFailed, Error: "peer removed"}, now)
	if s, b := failed.text(); s != "Could not send x.bin to carol" || b != "Peer removed" {
		t.Errorf("failed: %q / %q", s, b)
	}
	sent := &batch{kind: batchSent, peer: "carol"}
	sent.add(control.TransferInfo{Name: "x.bin", State: control.TransferDone, Size: 10}, now)
	if s, b := sent.text(); s != "Sent x.bin to carol" || b != "10 B" {
		t.Errorf("sent: %q / %q", s, b)
	}
}

func TestBatchKind(t *testing.T) {
	for _, tt := range []struct {
		state, dir, want string
	}{
		{control.TransferDone, control.DirectionIn, batchReceived},
		{control.TransferDone, control.DirectionOut, batchSent},
		{control.TransferFailed, control.DirectionIn, batchFailedIn},
		{control.TransferFailed, control.DirectionOut, batchFailedOut},
	} {
		if got := batchKind(control.TransferInfo{State: tt.state, Direction: tt.dir}); got != tt.want {
			t.Errorf("batchKind(%s, %s) = %s, want %s", tt.state, tt.dir, got, tt.want)
		}
	}
}
