package session

import (
	"fmt"
	"net"
	"syscall"
)

// WantedSocketBuffer is the UDP socket buffer size quic-go asks for (7
// MiB) so that a fast transfer does not drop packets between reads.
const WantedSocketBuffer = 7 << 20

// ListenUDP opens the UDP socket a node runs on: dual-stack, every local
// IPv4 and IPv6 address, port (0 picks a free one), with its buffers
// raised towards WantedSocketBuffer as far as the OS allows. quic-go
// makes the same request; asking first lets SocketBuffers report the
// outcome.
//
// One socket serves both families: Go opens [::] with IPV6_V6ONLY off,
// so IPv4 peers arrive as IPv4-mapped addresses (::ffff:a.b.c.d), which
// the node unmaps wherever an address enters it (addrPort). One socket
// keeps one quic.Transport, one port in connection strings and one
// reader. On a host without IPv6 Go falls back to an IPv4 socket.
func ListenUDP(port int) (*net.UDPConn, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{Port: port})
	if err != nil {
		return nil, fmt.Errorf("listen on UDP port %d: %w", port, err)
	}
	conn.SetReadBuffer(WantedSocketBuffer)
	conn.SetWriteBuffer(WantedSocketBuffer)
	return conn, nil
}

// SocketBuffers says how large a UDP socket's kernel buffers are.
type SocketBuffers struct {
	Receive int  `json:"receive"` // bytes, as the kernel reports them
	Send    int  `json:"send"`
	Limited bool `json:"limited"` // the OS capped them below WantedSocketBuffer
}

// Advice tells a user how to lift the limit, or is empty when there is none.
func (b SocketBuffers) Advice() string {
	if !b.Limited {
		return ""
	}
	return fmt.Sprintf("the OS limits UDP buffers to %d KiB receive, %d KiB send; for full speed run: sudo sysctl -w net.core.rmem_max=%d net.core.wmem_max=%d",
		b.Receive>>10, b.Send>>10, WantedSocketBuffer, WantedSocketBuffer)
}

// ReadSocketBuffers reports conn's kernel buffer sizes. A conn that is not
// an OS socket (a simulated one) has none: zero sizes, not limited.
func ReadSocketBuffers(conn net.PacketConn) (SocketBuffers, error) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return SocketBuffers{}, nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return SocketBuffers{}, fmt.Errorf("socket buffers: %w", err)
	}
	var b SocketBuffers
	var serr error
	err = raw.Control(func(fd uintptr) {
		b.Receive, serr = getsockoptInt(fd, syscall.SO_RCVBUF)
		if serr == nil {
			b.Send, serr = getsockoptInt(fd, syscall.SO_SNDBUF)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return SocketBuffers{}, fmt.Errorf("socket buffers: %w", err)
	}
	b.Limited = b.Receive < WantedSocketBuffer || b.Send < WantedSocketBuffer
	return b, nil
}
