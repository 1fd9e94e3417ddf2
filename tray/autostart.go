package tray

import (
	"bufio"
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// autostartName is the file name of the XDG autostart entry. packaging/
// installs a system-wide entry under the same name; a user entry of that
// name overrides it (XDG Autostart spec).
const autostartName = "punchdrop.desktop"

// autostartText is the tray's own autostart entry; the packaged one lives
// in packaging/ and may differ (it can count on an installed binary).
//
//go:embed autostart.desktop
var autostartText string

var autostartTemplate = template.Must(template.New("autostart").Parse(autostartText))

// autostart finds and edits the XDG autostart entry of punchdrop.
type autostart struct {
	userDir    string   // $XDG_CONFIG_HOME/autostart
	systemDirs []string // $XDG_CONFIG_DIRS/autostart, most important first
}

// newAutostart resolves the autostart folders from the environment:
// $XDG_CONFIG_HOME (default ~/.config) and $XDG_CONFIG_DIRS (default
// /etc/xdg). Relative values are ignored, as the spec says.
func newAutostart() autostart {
	var a autostart
	if v := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(v) {
		a.userDir = filepath.Join(v, "autostart")
	} else if home, err := os.UserHomeDir(); err == nil {
		a.userDir = filepath.Join(home, ".config", "autostart")
	}
	dirs := os.Getenv("XDG_CONFIG_DIRS")
	if dirs == "" {
		dirs = "/etc/xdg"
	}
	for _, d := range filepath.SplitList(dirs) {
		if filepath.IsAbs(d) {
			a.systemDirs = append(a.systemDirs, filepath.Join(d, "autostart"))
		}
	}
	return a
}

// userFile is the user's entry.
func (a autostart) userFile() string { return filepath.Join(a.userDir, autostartName) }

// systemFile returns the first system-wide entry, if any.
func (a autostart) systemFile() (string, bool) {
	for _, d := range a.systemDirs {
		p := filepath.Join(d, autostartName)
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return "", false
}

// enabled reports whether punchdrop starts at login: the user's entry
// decides when there is one, else a system-wide one.
func (a autostart) enabled() bool {
	if b, err := os.ReadFile(a.userFile()); err == nil {
		return !hiddenEntry(b)
	}
	p, ok := a.systemFile()
	if !ok {
		return false
	}
	b, err := os.ReadFile(p)
	return err == nil && !hiddenEntry(b)
}

// hiddenEntry reports whether a desktop entry turns itself off
// (Hidden=true, or GNOME's X-GNOME-Autostart-enabled=false).
func hiddenEntry(b []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if k == "Hidden" && v == "true" || k == "X-GNOME-Autostart-enabled" && v == "false" {
			return true
		}
	}
	return false
}

// set turns starting at login on or off. On, it writes the user's entry
// running command; off, it removes the user's entry, or, when a
// system-wide entry would still start punchdrop, writes a hidden one over
// it.
func (a autostart) set(on bool, command []string) error {
	if a.userDir == "" {
		return errors.New("start at login: no home directory to keep the autostart entry in")
	}
	_, system := a.systemFile()
	if !on && !system {
		if err := os.Remove(a.userFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("start at login: %w", err)
		}
		return nil
	}
	var buf bytes.Buffer
	if err := autostartTemplate.Execute(&buf, struct {
		Exec   string
		Hidden bool
	}{execLine(command), !on}); err != nil {
		return fmt.Errorf("start at login: %w", err)
	}
	if err := os.MkdirAll(a.userDir, 0o755); err != nil {
		return fmt.Errorf("start at login: %w", err)
	}
	tmp := a.userFile() + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("start at login: %w", err)
	}
	if err := os.Rename(tmp, a.userFile()); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("start at login: %w", err)
	}
	return nil
}

// execLine renders a command as the Exec key of a desktop entry: arguments
// with reserved characters are double-quoted with `"`, "`", `$` and `\`
// escaped, then the value is escaped as a desktop-entry string (`\` twice)
// and `%` doubled (Desktop Entry Specification, "The Exec key").
func execLine(command []string) string {
	if len(command) == 0 {
		command = []string{"punchdrop"}
	}
	args := make([]string, len(command))
	for i, arg := range command {
		if arg != "" && !strings.ContainsAny(arg, " \t\n\"'\\><~|&;$*?#()`") {
			args[i] = arg
			continue
		}
		var b strings.Builder
		b.WriteByte('"')
		for _, r := range arg {
			if strings.ContainsRune("\"`$\\", r) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		b.WriteByte('"')
		args[i] = b.String()
	}
	line := strings.Join(args, " ")
	line = strings.ReplaceAll(line, `\`, `\\`)
	line = strings.ReplaceAll(line, "%", "%%")
	return strings.ReplaceAll(line, "\n", `\n`)
}
