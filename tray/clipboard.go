package tray

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/atotto/clipboard"
)

// errNoClipboardTool is returned when no clipboard program is installed.
var errNoClipboardTool = errors.New("no clipboard tool found: install wl-clipboard (Wayland), or xclip or xsel (X11)")

// The clipboard goes through github.com/atotto/clipboard: pure Go (so
// CGO_ENABLED=0 builds work), it runs wl-copy/wl-paste on Wayland and
// xclip or xsel on X11, whichever is installed.

// readClipboard returns the clipboard's text.
func readClipboard() (string, error) {
	if clipboard.Unsupported {
		return "", errNoClipboardTool
	}
	s, err := clipboard.ReadAll()
	if err != nil {
		return "", fmt.Errorf("read clipboard: %w", toolError(err))
	}
	return s, nil
}

// writeClipboard puts text on the clipboard.
func writeClipboard(text string) error {
	if clipboard.Unsupported {
		return errNoClipboardTool
	}
	if err := clipboard.WriteAll(text); err != nil {
		return fmt.Errorf("write clipboard: %w", toolError(err))
	}
	return nil
}

// toolError adds what a clipboard program printed to its exit status
// ("Error: Can't open display" says more than "exit status 1").
func toolError(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}
