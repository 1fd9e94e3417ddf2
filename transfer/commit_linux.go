package transfer

import (
	"errors"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// renameInstead is called when hard-linking staging to name failed with
// linkErr. Where that is because the filesystem has no hard links (FAT,
// some network filesystems), it renames staging to name instead, with a
// rename that fails rather than replace an existing name. The folders
// are opened through dir, so the rename stays inside it too.
func renameInstead(dir *os.Root, staging, name string, linkErr error) error {
	if !noHardLinks(linkErr) {
		return linkErr
	}
	from, err := dir.Open(path.Dir(staging))
	if err != nil {
		return err
	}
	defer from.Close()
	to, err := dir.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer to.Close()
	err = unix.Renameat2(int(from.Fd()), path.Base(staging), int(to.Fd()), path.Base(name), unix.RENAME_NOREPLACE)
	if err != nil {
		return &os.LinkError{Op: "renameat2", Old: staging, New: name, Err: err}
	}
	return nil
}

// noHardLinks reports whether err from link(2) means the filesystem
// cannot link this file. (ENOTSUP is EOPNOTSUPP on Linux.)
func noHardLinks(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EOPNOTSUPP) ||
		errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EMLINK)
}
