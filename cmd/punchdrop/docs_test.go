package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDocsCommand(t *testing.T) {
	dir := t.TempDir()
	man, compl := filepath.Join(dir, "man"), filepath.Join(dir, "completions")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000") // Nov 2023
	root := newRoot()
	root.SetArgs([]string{"docs", "--man", man, "--completions", compl})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}

	page := readFile(t, filepath.Join(man, "punchdrop.1"))
	for _, want := range []string{`.TH "PUNCHDROP" "1" "Nov 2023" "punchdrop dev" "punchdrop manual"`, ".EX\n  punchdrop agent --name alice", `\fBpunchdrop-peers(1)\fP`} {
		if !strings.Contains(page, want) {
			t.Errorf("punchdrop.1 lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "Auto generated") {
		t.Error("punchdrop.1 carries cobra's autogen history")
	}
	for _, name := range []string{"punchdrop-agent.1", "punchdrop-peers-remove.1", "punchdrop-config-set.1", "punchdrop-completion-bash.1"} {
		if _, err := os.Stat(filepath.Join(man, name)); err != nil {
			t.Error(err)
		}
	}
	pages, err := filepath.Glob(filepath.Join(man, "*.1"))
	if err != nil || len(pages) < 10 {
		t.Fatalf("man pages: %v, %v", pages, err)
	}
	for _, p := range pages {
		page := readFile(t, p)
		copyright, seeAlso := strings.Index(page, "\n.SH COPYRIGHT\n"), strings.Index(page, "\n.SH SEE ALSO\n")
		if copyright < 0 || seeAlso < copyright || !strings.Contains(page, "MIT license") {
			t.Errorf("%s: no COPYRIGHT section naming the MIT license before SEE ALSO", filepath.Base(p))
		}
	}
	if _, err := os.Stat(filepath.Join(man, "punchdrop-docs.1")); err == nil {
		t.Error("the hidden docs command got a man page")
	}

	for file, want := range map[string]string{
		bashCompletionFile: "__start_punchdrop",
		zshCompletionFile:  "#compdef punchdrop",
		fishCompletionFile: "complete -c punchdrop",
	} {
		if got := readFile(t, filepath.Join(compl, file)); !strings.Contains(got, want) {
			t.Errorf("%s lacks %q", file, want)
		}
	}
}

func TestDocsNeedsADirectory(t *testing.T) {
	root := newRoot()
	root.SetArgs([]string{"docs"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--man DIR") {
		t.Errorf("docs without flags: err = %v", err)
	}
}

func TestWithCopyright(t *testing.T) {
	got := string(withCopyright([]byte(".TH X\n.SH NAME\nx\n")))
	if !strings.HasSuffix(got, "x\n\n"+manCopyright) {
		t.Errorf("a page without SEE ALSO: %q", got)
	}
	got = string(withCopyright([]byte(".SH NAME\nx\n\n.SH SEE ALSO\ny(1)\n")))
	if want := ".SH NAME\nx\n\n" + manCopyright + ".SH SEE ALSO\ny(1)\n"; got != want {
		t.Errorf("withCopyright = %q, want %q", got, want)
	}
}

func TestFenceIndented(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text\nmore", "plain text\nmore"},
		{"intro:\n\n  cmd one\n  cmd two\n\nafter", "intro:\n\n```\n  cmd one\n  cmd two\n```\n\nafter"},
		{"intro:\n  cmd", "intro:\n```\n  cmd\n```"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := fenceIndented(tt.in); got != tt.want {
			t.Errorf("fenceIndented(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
