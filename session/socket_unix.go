//go:build unix

package session

import "syscall"

func getsockoptInt(fd uintptr, opt int) (int, error) {
	return syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt)
}
