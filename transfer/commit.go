package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// maxCandidates bounds the names Commit tries for a file or a folder.
const maxCandidates = 10000

// Commit moves the finished staging file into dir at the safe relative
// path rel, creating parent folders, never overwriting anything: when
// rel is taken it tries "name (1).ext", "name (2).ext", ... It returns
// the path relative to dir it used. The move is atomic: a file under its
// final name is always complete.
//
// staging is relative to dir too, and rel comes from SafeRelPath. Every
// step goes through dir, so a symbolic link in the downloads folder never
// leads outside it: a path through such a link fails. When a file stands
// where rel needs a folder, rel's top folder takes the first free name
// instead, as in "a (1)/b.txt". On error the staging file is left as it
// was.
func Commit(dir *os.Root, staging, rel string) (string, error) {
	folder, err := makeFolder(dir, path.Dir(rel))
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", rel, err)
	}
	stem, ext := splitExt(path.Base(rel))
	for n := range maxCandidates {
		name := path.Join(folder, numbered(stem, ext, n))
		err := place(dir, staging, name)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("commit %s: %w", name, err)
		}
	}
	return "", fmt.Errorf("commit %s: %d names taken", rel, maxCandidates)
}

// makeFolder creates folder and its parents inside dir and returns it.
// When a file is in the way it creates "top (n)/rest" instead, with the
// first n that works, and returns that.
func makeFolder(dir *os.Root, folder string) (string, error) {
	if folder == "." {
		return folder, nil
	}
	top, rest, _ := strings.Cut(folder, "/")
	for n := range maxCandidates {
		f := path.Join(numbered(top, "", n), rest)
		err := dir.MkdirAll(f, 0o755)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.ENOTDIR) && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%d folder names taken", maxCandidates)
}

// NumberedName returns the nth name to try for a file called name when
// it is taken: name itself, then "stem (n).ext".
func NumberedName(name string, n int) string {
	stem, ext := splitExt(name)
	return numbered(stem, ext, n)
}

// numbered returns the nth name to try for stem+ext: the name itself,
// then "stem (n)ext", with stem cut to keep within maxElementLen bytes.
func numbered(stem, ext string, n int) string {
	if n == 0 {
		return stem + ext
	}
	suffix := fmt.Sprintf(" (%d)%s", n, ext)
	return truncate(stem, maxElementLen-len(suffix)) + suffix
}

// place gives the staging file the name name, or fails with an error
// matching fs.ErrExist if name is taken.
func place(dir *os.Root, staging, name string) error {
	if err := dir.Link(staging, name); err != nil {
		return renameInstead(dir, staging, name, err)
	}
	if err := dir.Remove(staging); err != nil {
		dir.Remove(name) // undo, so that the file stays staged under one name
		return fmt.Errorf("remove staging file: %w", err)
	}
	return nil
}
