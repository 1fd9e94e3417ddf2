package agent

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"gopkg.in/natefinch/lumberjack.v2"
)

// Log rotation: a log a user can read and send in a bug report, that
// never fills a disk (at most (1+logBackups) × logMaxMB).
const (
	logMaxMB   = 10
	logBackups = 3
)

// openLog logs to the log file, rotated by size (the old ones beside it
// as punchdrop-<time>.log), and, when stderr is not nil, to stderr too.
func openLog(path string, level *slog.LevelVar, stderr io.Writer) (*slog.Logger, func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("open log: %w", err)
	}
	// Create it private before the rotator opens it; rotated files keep
	// the mode.
	created, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open log: %w", err)
	}
	created.Close()
	f := &lumberjack.Logger{Filename: path, MaxSize: logMaxMB, MaxBackups: logBackups}
	var out io.Writer = f
	if stderr != nil {
		out = io.MultiWriter(f, stderr)
	}
	return slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level})), func() { f.Close() }, nil
}

// logLevel parses a configured level; empty or unknown means info.
func logLevel(name string) slog.Level {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(name)); err != nil || name == "" {
		return slog.LevelInfo
	}
	return lv
}

// addrString prints an address, or "" for the zero value.
func addrString[T interface {
	IsValid() bool
	String() string
}](a T) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
