package tray

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/punchdrop/punchdrop/bytesize"
	"github.com/punchdrop/punchdrop/control"
)

// coalesceWindow: files that end within this time of the previous one,
// with the same peer and outcome, share one notification, so a folder of
// a thousand files is one notification and not a thousand.
const coalesceWindow = 10 * time.Second

// Kinds of batch: what happened to the files in it.
const (
	batchReceived   = "received"
	batchSent       = "sent"
	batchFailedIn   = "failed-in"
	batchFailedOut  = "failed-out"
	maxNamesInBody  = 3 // file names listed in a notification before "and N more"
	maxNoteBodyText = 300
)

// batch collects ended transfers for one notification.
type batch struct {
	key   string // the notification's coalescing key, unique per batch
	kind  string
	peer  string // the peer's display name
	files int
	bytes int64
	tops  []string          // first components of the names, in arrival order
	paths map[string]string // received: each top's absolute path
	err   string            // failed: the last error
	last  time.Time
}

// batchKind is the kind of batch an ended transfer goes into.
func batchKind(t control.TransferInfo) string {
	switch {
	case t.State == control.TransferDone && t.Direction == control.DirectionIn:
		return batchReceived
	case t.State == control.TransferDone:
		return batchSent
	case t.Direction == control.DirectionIn:
		return batchFailedIn
	}
	return batchFailedOut
}

// add puts an ended transfer into the batch.
func (b *batch) add(t control.TransferInfo, now time.Time) {
	b.files++
	b.bytes += t.Size
	b.last = now
	if t.Error != "" {
		b.err = t.Error
	}
	top, _ := topLevel(t.Name)
	seen := false
	for _, x := range b.tops {
		seen = seen || x == top
	}
	if !seen {
		b.tops = append(b.tops, top)
		if b.kind == batchReceived && t.Path != "" && filepath.IsAbs(t.Path) {
			if b.paths == nil {
				b.paths = map[string]string{}
			}
			b.paths[top] = filepath.Join(downloadsRoot(t.Path, t.Name), top)
		}
	}
}

// downloadsRoot is the folder a received file's relative name is
// relative to: its stored path with one element removed per component.
func downloadsRoot(path, name string) string {
	root := filepath.Clean(path)
	for range strings.Split(filepath.Clean(name), "/") {
		root = filepath.Dir(root)
	}
	return root
}

// text is the notification's summary and body.
func (b *batch) text() (summary, body string) {
	files := fmt.Sprintf("%d %s", b.files, plural(b.files, "file", "files"))
	what := files
	switch {
	case len(b.tops) == 1 && b.files == 1:
		what = b.tops[0]
	case len(b.tops) == 1:
		what = "folder " + b.tops[0]
	}
	list := listNames(b.tops, maxNamesInBody)
	size := bytesize.Format(b.bytes)
	switch b.kind {
	case batchReceived:
		summary = "Received " + what
		body = fmt.Sprintf("%s, %s, from %s", files, size, b.peer)
		if b.files == 1 {
			body = fmt.Sprintf("%s, from %s", size, b.peer)
		}
		if len(b.tops) > 1 {
			body = fmt.Sprintf("%s (%s), from %s", list, size, b.peer)
		}
	case batchSent:
		summary = fmt.Sprintf("Sent %s to %s", what, b.peer)
		body = fmt.Sprintf("%s, %s", files, size)
		if b.files == 1 {
			body = size
		}
		if len(b.tops) > 1 {
			body = fmt.Sprintf("%s (%s)", list, size)
		}
	case batchFailedIn:
		summary = fmt.Sprintf("Could not receive %s from %s", what, b.peer)
		body = capitalize(b.err)
	default:
		summary = fmt.Sprintf("Could not send %s to %s", what, b.peer)
		body = capitalize(b.err)
	}
	return clip(summary, maxLabel), clip(body, maxNoteBodyText)
}

// openTarget is what Open opens for a received batch: the file or folder
// when there is one, else the downloads folder; false when unknown.
func (b *batch) openTarget() (string, bool) {
	if len(b.tops) == 1 {
		p, ok := b.paths[b.tops[0]]
		return p, ok
	}
	for _, p := range b.paths {
		return filepath.Dir(p), true
	}
	return "", false
}

// showTargets are the items Show in folder selects.
func (b *batch) showTargets() []string {
	var out []string
	for _, top := range b.tops {
		if p, ok := b.paths[top]; ok {
			out = append(out, p)
		}
	}
	return out
}

// listNames lists names for a notification: the first n, then how many
// more there are.
func listNames(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:n], ", ") + fmt.Sprintf(" and %d more", len(names)-n)
}

// knockBatch is the latest notification about peer requests; requests
// that follow it within coalesceWindow join it.
type knockBatch struct {
	key  string   // the notification's coalescing key
	who  []string // the requesters' names, in arrival order
	last time.Time
}
