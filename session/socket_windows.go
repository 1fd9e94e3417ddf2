package session

import "syscall"

func getsockoptInt(fd uintptr, opt int) (int, error) {
	return syscall.GetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, opt)
}
