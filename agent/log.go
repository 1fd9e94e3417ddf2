package agent

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// openLog logs to the log file and, when stderr is not nil, to stderr too.
func openLog(path, level string, stderr io.Writer) (*slog.Logger, func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, nil, fmt.Errorf("open log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("open log: %w", err)
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil || level == "" {
		lv = slog.LevelInfo
	}
	var out io.Writer = f
	if stderr != nil {
		out = io.MultiWriter(f, stderr)
	}
	return slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: lv})), func() { f.Close() }, nil
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
