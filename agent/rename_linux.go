package agent

import (
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames a file or folder, failing with an error that
// matches fs.ErrExist rather than replace what is at to.
func renameNoReplace(from, to string) error {
	if err := unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE); err != nil {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: err}
	}
	return nil
}
