package control

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// checkAgentUser refuses an agent run by another user: a socket someone
// else put in our place would read every request (messages, file paths)
// and could answer anything. Root may talk to any user's agent.
func checkAgentUser(conn net.Conn) error {
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return nil
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if credErr != nil {
		return fmt.Errorf("who is the agent: %w", credErr)
	}
	if me := os.Geteuid(); me != 0 && int(cred.Uid) != me {
		return fmt.Errorf("the process behind it runs as another user (uid %d, pid %d); refusing to talk to it", cred.Uid, cred.Pid)
	}
	return nil
}
