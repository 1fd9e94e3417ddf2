package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCommittedNoticesAreCurrent checks that the committed
// THIRD_PARTY_NOTICES is what gen writes now. The go command reads the
// module cache; should a module be missing, it may fetch it from a module
// proxy, never straight from its repository (GOPROXY without "direct").
func TestCommittedNoticesAreCurrent(t *testing.T) {
	out, err := exec.Command("go", "env", "GOPROXY").Output()
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOPROXY="+proxiesOnly(strings.TrimSpace(string(out))))
	got, err := render(env)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join("..", "THIRD_PARTY_NOTICES"))
	if err != nil {
		t.Fatalf("%v (run make notices)", err)
	}
	if bytes.Equal(got, committed) {
		return
	}
	gotLines, wantLines := strings.Split(string(got), "\n"), strings.Split(string(committed), "\n")
	for i := range min(len(gotLines), len(wantLines)) {
		if gotLines[i] != wantLines[i] {
			t.Fatalf("THIRD_PARTY_NOTICES differs from what gen writes (run make notices); line %d:\ncommitted: %q\ngen:       %q",
				i+1, wantLines[i], gotLines[i])
		}
	}
	t.Fatalf("THIRD_PARTY_NOTICES has %d lines, gen writes %d (run make notices)", len(wantLines), len(gotLines))
}

// proxiesOnly returns a GOPROXY value with "direct" (fetching from the
// repository itself) left out: the proxies of goproxy, tried in order, or
// "off" when it names none.
func proxiesOnly(goproxy string) string {
	var proxies []string
	for _, p := range strings.FieldsFunc(goproxy, func(r rune) bool { return r == ',' || r == '|' }) {
		if p != "direct" && p != "off" {
			proxies = append(proxies, p)
		}
	}
	if len(proxies) == 0 {
		return "off"
	}
	return strings.Join(proxies, ",")
}

func TestProxiesOnly(t *testing.T) {
	for in, want := range map[string]string{
		"https://proxy.golang.org,direct":     "https://proxy.golang.org",
		"https://a.example|https://b.example": "https://a.example,https://b.example",
		"direct":                              "off",
		"off":                                 "off",
		"":                                    "off",
	} {
		if got := proxiesOnly(in); got != want {
			t.Errorf("proxiesOnly(%q) = %q, want %q", in, got, want)
		}
	}
}

// writeFiles creates a directory holding files (name -> contents).
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const mitText = `The MIT License

Copyright (c) 2026 Jane Doe   

Permission is hereby granted, free of charge, to any person obtaining a copy of this software and associated documentation files (the "Software"), to deal in the Software without restriction, including without limitation the rights to use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.

`

func TestReadEntry(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"LICENSE.md": strings.ReplaceAll(mitText, "\n", "\r\n"),
		"NOTICE":     "Jane Doe wrote this.\n",
		"README.md":  "not a license",
		"main.go":    "package example",
	})
	e, err := readEntry("example.com/m", "v1.0.0", dir)
	if err != nil {
		t.Fatal(err)
	}
	if e.license != "MIT" || len(e.files) != 2 || e.files[0].name != "LICENSE.md" || e.files[1].name != "NOTICE" {
		t.Fatalf("entry = %+v", e)
	}
	if text := e.files[0].text; strings.Contains(text, "\r") || strings.Contains(text, "Jane Doe \n") || !strings.HasSuffix(text, "SOFTWARE.\n") {
		t.Errorf("license text not tidied: %q", text)
	}
}

// TestReadEntryRefuses checks that gen stops rather than guess.
func TestReadEntryRefuses(t *testing.T) {
	tests := []struct {
		name, module string
		files        map[string]string
		want         string
	}{
		{"no license", "example.com/m", map[string]string{"README": "hi"}, "no license file"},
		{"unknown license", "example.com/m", map[string]string{"COPYING": "You may use this on Tuesdays."}, "COPYING: not a license text"},
		{"two licenses", "example.com/m", map[string]string{"LICENSE-MIT": mitText, "LICENSE-APACHE": mitText}, "several license files"},
		{"changed after review", "go.yaml.in/yaml/v3", map[string]string{"LICENSE": mitText}, "changed since it was reviewed"},
	}
	for _, tt := range tests {
		_, err := readEntry(tt.module, "v1.0.0", writeFiles(t, tt.files))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestUnsupplied(t *testing.T) {
	yaml := entry{name: "yaml", refersTo: []string{"Apache-2.0"}}
	other := entry{name: "other", refersTo: []string{"MPL-2.0", "Apache-2.0"}}
	cobra := entry{name: "cobra", carries: []string{"Apache-2.0"}}
	if got := unsupplied([]entry{yaml, cobra}); len(got) != 0 {
		t.Errorf("with cobra carrying Apache-2.0: %v", got)
	}
	if got := unsupplied([]entry{yaml, other}); !slices.Equal(got, []string{"Apache-2.0", "MPL-2.0"}) {
		t.Errorf("unsupplied = %v", got)
	}
}
