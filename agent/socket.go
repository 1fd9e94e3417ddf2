package agent

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The control socket gives whoever can connect to it the whole agent: its
// peers, its files, its messages. It is made 0600 from the start (under a
// 0177 umask, not chmod'ed after binding), in a folder that only this user
// can write to, so nobody else can reach it or put another socket in its
// place.

// listenControl opens the control socket, replacing a stale one left by an
// agent that crashed, but never one an agent still answers on.
func listenControl(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if err := checkPrivateDir(dir); err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("control socket %s: another agent is running", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln, err := listenPrivate(path)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	return ln, nil
}

// checkPrivateDir makes sure dir is a real folder (not a symbolic link)
// that this user owns and nobody else may write to.
func checkPrivateDir(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder (a symbolic link?); remove it and start again", dir)
	}
	owner, ok := fileOwner(fi)
	if !ok {
		return nil // no owners here (Windows): the folder is the user's profile
	}
	if owner != os.Geteuid() {
		return fmt.Errorf("%s belongs to another user (uid %d); use a folder of your own (--home, or XDG_RUNTIME_DIR)", dir, owner)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("others may write to %s (mode %s), so they could replace the socket; run: chmod go-w %s", dir, fi.Mode().Perm(), dir)
	}
	return nil
}
