//go:build !linux

package agent

import (
	"fmt"
	"io/fs"
	"os"
)

// renameNoReplace renames a file or folder, failing with an error that
// matches fs.ErrExist rather than replace what is at to. Without
// renameat2 it checks first, which leaves a short race.
func renameNoReplace(from, to string) error {
	if _, err := os.Lstat(to); err == nil {
		return fmt.Errorf("rename %s: %w", to, fs.ErrExist)
	}
	return os.Rename(from, to)
}
