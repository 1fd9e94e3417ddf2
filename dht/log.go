package dht

import (
	"context"
	"log/slog"

	alog "github.com/anacrolix/log"
)

// libraryLogger passes the DHT library's messages to l at debug level,
// whatever level the library gives them: its warnings and errors are about
// single remote nodes (a put refused, a query timed out, no bootstrap
// nodes yet), which is the normal weather of a DHT. What a user must know
// this package logs itself.
func libraryLogger(l *slog.Logger) alog.Logger {
	var al alog.Logger
	al.SetHandlers(slogHandler{l})
	if !l.Enabled(context.Background(), slog.LevelDebug) {
		// Skip formatting messages nobody reads.
		return al.WithFilterLevel(alog.Critical)
	}
	return al.WithFilterLevel(alog.Debug)
}

// slogHandler is an alog.Handler writing to a slog.Logger.
type slogHandler struct{ l *slog.Logger }

func (h slogHandler) Handle(r alog.Record) {
	h.l.Debug("dht library: "+r.Text(), "level", r.Level.LogString())
}
