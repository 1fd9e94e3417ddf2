package tray

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExecLine(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, "punchdrop"},
		{[]string{"punchdrop"}, "punchdrop"},
		{[]string{"/usr/bin/punchdrop", "--home", "/home/a/pd"}, "/usr/bin/punchdrop --home /home/a/pd"},
		{[]string{"/opt/my apps/punchdrop"}, `"/opt/my apps/punchdrop"`},
		{[]string{"/x/pd", "--home", `/h/a"b$c`}, `/x/pd --home "/h/a\\"b\\$c"`},
		{[]string{"/x/100%/pd"}, "/x/100%%/pd"},
		{[]string{"/x/pd", ""}, `/x/pd ""`},
	}
	for _, tt := range tests {
		if got := execLine(tt.in); got != tt.want {
			t.Errorf("execLine(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestAutostart(t *testing.T) {
	config, system := t.TempDir(), t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", config)
	t.Setenv("XDG_CONFIG_DIRS", "relative/ignored:"+system)
	a := newAutostart()
	if want := filepath.Join(config, "autostart", "punchdrop.desktop"); a.userFile() != want {
		t.Fatalf("user entry %s, want %s", a.userFile(), want)
	}
	if a.enabled() {
		t.Fatal("enabled with no entry")
	}
	if err := a.set(true, []string{"/usr/bin/punchdrop"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(a.userFile())
	if err != nil || !strings.Contains(string(b), "Exec=/usr/bin/punchdrop\n") || !strings.HasPrefix(string(b), "[Desktop Entry]\n") {
		t.Fatalf("entry: %v\n%s", err, b)
	}
	if !a.enabled() {
		t.Fatal("not enabled after set(true)")
	}
	if err := a.set(false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a.userFile()); !os.IsNotExist(err) || a.enabled() {
		t.Fatalf("user entry left after set(false): %v", err)
	}

	// A system-wide entry (as the package installs) starts punchdrop
	// until the user turns it off with a hidden entry of their own.
	sysDir := filepath.Join(system, "autostart")
	os.MkdirAll(sysDir, 0o755)
	if err := os.WriteFile(filepath.Join(sysDir, "punchdrop.desktop"), []byte("[Desktop Entry]\nType=Application\nExec=punchdrop\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !a.enabled() {
		t.Fatal("system entry not seen")
	}
	if err := a.set(false, nil); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(a.userFile())
	if a.enabled() || !strings.Contains(string(b), "Hidden=true") {
		t.Fatalf("turning off over a system entry: enabled %v, user entry:\n%s", a.enabled(), b)
	}
	if err := a.set(true, nil); err != nil || !a.enabled() {
		t.Fatalf("on again: %v, enabled %v", err, a.enabled())
	}
}
