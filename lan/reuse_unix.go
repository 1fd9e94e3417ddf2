//go:build unix

package lan

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reuse lets several sockets bind the announcement port, so that every
// agent of a host hears every announcement: SO_REUSEADDR suffices on
// Linux, BSDs and macOS want SO_REUSEPORT for multicast.
func reuse(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
