//go:build !linux

package control

import "net"

// checkAgentUser trusts the socket's permissions where the peer's user
// cannot be asked.
func checkAgentUser(net.Conn) error { return nil }
