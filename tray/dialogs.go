package tray

import (
	"context"
	"errors"
	"fmt"
	"html"
	"os"
	"os/exec"
	"strings"
)

// dialogs asks the user small questions with zenity (GTK) or kdialog (KDE),
// whichever is installed; kdialog first on KDE. Texts may hold peer names,
// which peers choose: zenity reads --text as Pango markup, so it gets them
// escaped.
type dialogs struct {
	tool string // "zenity", "kdialog", or "" when neither is installed
}

// errNoDialogTool is returned when neither zenity nor kdialog is installed.
var errNoDialogTool = errors.New("no dialog tool: install zenity or kdialog")

func findDialogs() dialogs {
	order := []string{"zenity", "kdialog"}
	if strings.Contains(strings.ToUpper(os.Getenv("XDG_CURRENT_DESKTOP")), "KDE") {
		order = []string{"kdialog", "zenity"}
	}
	for _, t := range order {
		if _, err := exec.LookPath(t); err == nil {
			return dialogs{tool: t}
		}
	}
	return dialogs{}
}

// available reports whether dialogs can be shown.
func (d dialogs) available() bool { return d.tool != "" }

// run runs the dialog tool; ok is false when the user cancelled.
func (d dialogs) run(ctx context.Context, args ...string) (out string, ok bool, err error) {
	if d.tool == "" {
		return "", false, errNoDialogTool
	}
	b, err := exec.CommandContext(ctx, d.tool, args...).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return "", false, nil // Cancel, or the window was closed
	}
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", d.tool, toolError(err))
	}
	return strings.TrimRight(string(b), "\n"), true, nil
}

// entry asks for one line of text, offering initial.
func (d dialogs) entry(ctx context.Context, title, prompt, initial string) (string, bool, error) {
	if d.tool == "kdialog" {
		return d.run(ctx, "--title", title, "--inputbox", prompt, initial)
	}
	return d.run(ctx, "--entry", "--title", title, "--text", html.EscapeString(prompt), "--entry-text", initial, "--width", "520")
}

// choose asks for files, or one folder, to send.
func (d dialogs) choose(ctx context.Context, title string, folder bool) ([]string, bool, error) {
	var args []string
	switch {
	case d.tool == "kdialog" && folder:
		args = []string{"--title", title, "--getexistingdirectory", homeDir()}
	case d.tool == "kdialog":
		args = []string{"--title", title, "--getopenfilename", homeDir(), "--multiple", "--separate-output"}
	case folder:
		args = []string{"--file-selection", "--title", title, "--directory"}
	default:
		args = []string{"--file-selection", "--title", title, "--multiple", "--separator", "\n"}
	}
	out, ok, err := d.run(ctx, args...)
	if !ok || err != nil {
		return nil, ok, err
	}
	var paths []string
	for _, p := range strings.Split(out, "\n") {
		if p != "" {
			paths = append(paths, p)
		}
	}
	return paths, len(paths) > 0, nil
}

// confirm asks a yes/no question.
func (d dialogs) confirm(ctx context.Context, title, question string) (bool, error) {
	var args []string
	if d.tool == "kdialog" {
		args = []string{"--title", title, "--warningyesno", question}
	} else {
		args = []string{"--question", "--title", title, "--text", html.EscapeString(question)}
	}
	_, ok, err := d.run(ctx, args...)
	return ok, err
}

func homeDir() string {
	h, _ := os.UserHomeDir()
	return h
}
