//go:build unix

package agent

import (
	"io/fs"
	"net"
	"syscall"
)

// listenPrivate binds a unix socket that is 0600 from its first moment:
// the process's umask is 0177 while it is made. (The umask is the whole
// process's, but it only narrows what is made meanwhile, and the agent
// makes its other files 0600 anyway.)
func listenPrivate(path string) (net.Listener, error) {
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}

// fileOwner is the user ID that owns a file.
func fileOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}
