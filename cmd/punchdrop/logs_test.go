package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/testutil"
)

func appendLines(t *testing.T, path string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i < to; i++ {
		fmt.Fprintf(f, "line %d\n", i)
	}
}

func TestPrintTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "punchdrop.log")
	appendLines(t, path, 0, 100)
	tests := []struct {
		n    int
		want string
	}{
		{3, "line 97\nline 98\nline 99\n"},
		{0, ""},
		{1000, "line 0\n"}, // starts at the first line
	}
	for _, tt := range tests {
		var out bytes.Buffer
		size, err := printTail(&out, path, tt.n)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out.String(), tt.want) || (tt.n <= 100 && out.String() != tt.want) {
			t.Errorf("tail -n %d = %q, want %q", tt.n, out.String(), tt.want)
		}
		if fi, _ := os.Stat(path); size != fi.Size() {
			t.Errorf("offset %d, file size %d", size, fi.Size())
		}
	}
	if _, err := printTail(&bytes.Buffer{}, filepath.Join(t.TempDir(), "none.log"), 5); err == nil || !strings.Contains(err.Error(), "no log yet") {
		t.Fatalf("missing log: %v", err)
	}
}

func TestFollowLogAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "punchdrop.log")
	appendLines(t, path, 0, 5)
	offset, err := printTail(&bytes.Buffer{}, path, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var out testutil.Buffer
	done := make(chan error, 1)
	go func() { done <- followLog(ctx, &out, path, offset) }()
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(out.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("never saw %q; got %q", s, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	appendLines(t, path, 5, 8)
	waitFor("line 7\n")
	// Rotate as lumberjack does: rename, then a new file.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendLines(t, path, 8, 10)
	waitFor("line 9\n")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "line 5\nline 6\nline 7\nline 8\nline 9\n"; got != want {
		t.Fatalf("followed %q, want %q", got, want)
	}
}
