package agent

import (
	"bytes"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/time/rate"

	"github.com/punchdrop/punchdrop/store"
	"github.com/punchdrop/punchdrop/testutil"
	"github.com/punchdrop/punchdrop/transfer"
)

// junkStream is a peer's transfer stream that carries no offer, only junk.
type junkStream struct{ io.Reader }

func (junkStream) Write(p []byte) (int, error)      { return len(p), nil }
func (junkStream) Close() error                     { return nil }
func (junkStream) CancelRead(quic.StreamErrorCode)  {}
func (junkStream) CancelWrite(quic.StreamErrorCode) {}
func (junkStream) SetWriteDeadline(time.Time) error { return nil }

// TestRefusalWarningsAreBounded: a peer that opens stream after stream
// of junk is refused each time, and the log says so a few times, then
// how many it held back: it never fills the log.
func TestRefusalWarningsAreBounded(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logged testutil.Buffer
	r := &receiving{
		journal: st, quota: transfer.NewQuota(transfer.DiskLimits{}), streams: map[string]int{},
		log:      slog.New(slog.NewTextHandler(&logged, nil)),
		folder:   func(string) string { return "" },
		progress: func(transfer.Record, int64) {},
		warnLog:  rate.NewLimiter(rate.Every(time.Hour), 5),
	}
	if err := r.setDownloads(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	const streams = 1000
	for range streams {
		if rec, err := r.receive(t.Context(), "bobbobbob", junkStream{bytes.NewReader([]byte("not an offer at all"))}); err == nil || rec.ID != "" {
			t.Fatalf("junk taken: %+v, %v", rec, err)
		}
	}
	lines := strings.Count(logged.String(), "incoming transfer refused")
	if lines != 5 {
		t.Fatalf("%d refusals logged %d warnings, want 5:\n%s", streams, lines, logged.String())
	}
	if got := r.unsaid.Load(); got != streams-5 {
		t.Errorf("held back %d warnings, want %d", got, streams-5)
	}
}
