package transfer

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// downloads returns a fresh downloads folder, opened as a root, and its
// path.
func downloads(t *testing.T) (*os.Root, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "downloads")
	if err := os.MkdirAll(filepath.Join(dir, StagingDir), 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root, dir
}

// stage writes a finished staging file holding content.
func stage(t *testing.T, root *os.Root, content string) string {
	t.Helper()
	name := StagingDir + "/0123abcd.part"
	if err := root.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// commit stages content, commits it as rel and checks that it arrived
// whole and the staging file is gone.
func commit(t *testing.T, root *os.Root, rel, content string) string {
	t.Helper()
	staging := stage(t, root, content)
	got, err := Commit(root, staging, rel)
	if err != nil {
		t.Fatalf("Commit(%q): %v", rel, err)
	}
	if b, err := root.ReadFile(got); err != nil || string(b) != content {
		t.Fatalf("%s holds %q, %v; want %q", got, b, err, content)
	}
	if _, err := root.Lstat(staging); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("staging file left behind: %v", err)
	}
	return got
}

func TestCommitNumbersTakenNames(t *testing.T) {
	root, _ := downloads(t)
	var got []string
	for _, content := range []string{"one", "two", "three"} {
		got = append(got, commit(t, root, "a.txt", content))
	}
	want := []string{"a.txt", "a (1).txt", "a (2).txt"}
	for i, content := range []string{"one", "two", "three"} {
		if got[i] != want[i] {
			t.Fatalf("names = %q, want %q", got, want)
		}
		if b, _ := root.ReadFile(want[i]); string(b) != content {
			t.Fatalf("%s now holds %q, want %q", want[i], b, content)
		}
	}
}

func TestCommitNeverOverwrites(t *testing.T) {
	long := strings.Repeat("n", 251) + ".txt"
	longExt := "a." + strings.Repeat("x", 253)
	tests := []struct {
		name    string
		files   []string // present before, holding "old"
		folders []string // present before
		rel     string
		want    string
	}{
		{name: "empty folder", rel: "a.txt", want: "a.txt"},
		{name: "taken", files: []string{"a.txt"}, rel: "a.txt", want: "a (1).txt"},
		{name: "no extension", files: []string{"README"}, rel: "README", want: "README (1)"},
		{name: "dotfile", files: []string{".bashrc"}, rel: ".bashrc", want: ".bashrc (1)"},
		{name: "double extension", files: []string{"a.tar.gz"}, rel: "a.tar.gz", want: "a.tar (1).gz"},
		{name: "taken in a folder", files: []string{"p/a.txt"}, rel: "p/a.txt", want: "p/a (1).txt"},
		{name: "new folders", rel: "p/q/r.jpg", want: "p/q/r.jpg"},
		{name: "existing folder", files: []string{"p/old.jpg"}, rel: "p/new.jpg", want: "p/new.jpg"},
		{name: "folder where a file goes", folders: []string{"a.txt"}, rel: "a.txt", want: "a (1).txt"},
		{name: "file where a folder goes", files: []string{"p"}, rel: "p/r.jpg", want: "p (1)/r.jpg"},
		{name: "file deeper where a folder goes", files: []string{"p/q"}, rel: "p/q/r.jpg", want: "p (1)/q/r.jpg"},
		{name: "file where a dotted folder goes", files: []string{"p.d"}, rel: "p.d/r.jpg", want: "p.d (1)/r.jpg"},
		{name: "long name", files: []string{long}, rel: long, want: strings.Repeat("n", 247) + " (1).txt"},
		{name: "long extension", files: []string{longExt}, rel: longExt, want: longExt[:251] + " (1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, _ := downloads(t)
			for _, f := range tt.files {
				if err := root.MkdirAll(filepath.Dir(f), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := root.WriteFile(f, []byte("old"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			for _, d := range tt.folders {
				if err := root.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if got := commit(t, root, tt.rel, "new"); got != tt.want {
				t.Fatalf("Commit(%q) = %q, want %q", tt.rel, got, tt.want)
			}
			if len(filepath.Base(tt.want)) > maxElementLen {
				t.Fatalf("%q is longer than %d bytes", tt.want, maxElementLen)
			}
			for _, f := range tt.files {
				if b, _ := root.ReadFile(f); string(b) != "old" {
					t.Fatalf("%s was changed to %q", f, b)
				}
			}
		})
	}
}

// TestCommitStaysInside puts symbolic links in the downloads folder that
// lead outside it. A folder link makes Commit fail, keeping the staging
// file; a file link is a taken name like any other.
func TestCommitStaysInside(t *testing.T) {
	root, dir := downloads(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "evil")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "x.txt"), filepath.Join(dir, "x.txt")); err != nil {
		t.Fatal(err)
	}
	staging := stage(t, root, "payload")
	if got, err := Commit(root, staging, "evil/x.txt"); err == nil {
		t.Errorf("Commit through a link out of downloads = %q, want an error", got)
	}
	if _, err := root.Stat(staging); err != nil {
		t.Fatalf("a failed commit lost the staging file: %v", err)
	}
	if got := commit(t, root, "x.txt", "payload"); got != "x (1).txt" {
		t.Errorf("Commit onto a link = %q, want %q", got, "x (1).txt")
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("written outside downloads: %v", entries)
	}
}

func TestCommitKeepsStagingOnError(t *testing.T) {
	root, _ := downloads(t)
	staging := stage(t, root, "payload")
	long := strings.Repeat("a", 300) // too long for the filesystem
	if got, err := Commit(root, staging, long); err == nil {
		t.Fatalf("Commit of a %d-byte name = %q, want an error", len(long), got)
	}
	if b, err := root.ReadFile(staging); err != nil || string(b) != "payload" {
		t.Fatalf("staging file after a failed commit: %q, %v", b, err)
	}
}

// TestRenameInstead covers the way a file is committed on a filesystem
// without hard links, which the tests cannot mount.
func TestRenameInstead(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("renameat2 is Linux only")
	}
	root, _ := downloads(t)
	noLinks := &os.LinkError{Op: "linkat", Err: syscall.EPERM}

	staging := stage(t, root, "one")
	if err := renameInstead(root, staging, "a.txt", noLinks); err != nil {
		t.Fatal(err)
	}
	if b, _ := root.ReadFile("a.txt"); string(b) != "one" {
		t.Fatalf("a.txt holds %q", b)
	}
	if _, err := root.Lstat(staging); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("staging file left behind: %v", err)
	}

	staging = stage(t, root, "two")
	if err := renameInstead(root, staging, "a.txt", noLinks); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("rename onto a taken name: %v, want fs.ErrExist", err)
	}
	if b, _ := root.ReadFile("a.txt"); string(b) != "one" {
		t.Fatalf("a.txt was changed to %q", b)
	}

	other := &os.LinkError{Op: "linkat", Err: syscall.EIO}
	if err := renameInstead(root, staging, "b.txt", other); err != other {
		t.Fatalf("another link error came back as %v", err)
	}
	if _, err := root.Stat(staging); err != nil {
		t.Fatalf("staging file gone: %v", err)
	}
}
