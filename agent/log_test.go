package agent

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "punchdrop.log")
	log, closeLog, err := openLog(path, new(slog.LevelVar), nil)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("x", 1024)
	for range (logMaxMB + 1) << 10 {
		log.Info("filler", "data", line)
	}
	closeLog()
	entries, _ := os.ReadDir(dir)
	var backups int
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "punchdrop-") && strings.HasSuffix(e.Name(), ".log") {
			backups++
		}
	}
	fi, err := os.Stat(path)
	if err != nil || backups != 1 || fi.Size() >= logMaxMB<<20 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after %d MiB of log: %d backups, current %v (%v)", logMaxMB+1, backups, fi, err)
	}
}
