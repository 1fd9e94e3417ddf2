package dht

import (
	"net"
	"sync/atomic"

	"github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

// Traffic counts datagrams and bytes one way on a node's socket.
type Traffic struct {
	Packets uint64
	Bytes   uint64
}

// countingConn is the node's socket as the DHT library sees it: it counts
// traffic both ways and drops, before the library sees them, datagrams
// that are not KRPC messages. The library logs each malformed message
// through its package-wide logger (to stderr, not to ours), so anyone
// could fill our stderr by sending junk.
type countingConn struct {
	net.PacketConn
	sentPackets, sentBytes, recvPackets, recvBytes, dropped atomic.Uint64
}

// ReadFrom returns the next datagram that decodes as a KRPC message, and
// its sender's address (an IPv4 one as IPv4, see unmapped).
func (c *countingConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			return n, addr, err
		}
		c.recvPackets.Add(1)
		c.recvBytes.Add(uint64(n))
		if isKRPC(b[:n]) {
			return n, unmapped(addr), nil
		}
		c.dropped.Add(1)
	}
}

// WriteTo sends a datagram and counts it.
func (c *countingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(b, addr)
	if err == nil {
		c.sentPackets.Add(1)
		c.sentBytes.Add(uint64(n))
	}
	return n, err
}

func (c *countingConn) sent() Traffic {
	return Traffic{Packets: c.sentPackets.Load(), Bytes: c.sentBytes.Load()}
}

func (c *countingConn) received() Traffic {
	return Traffic{Packets: c.recvPackets.Load(), Bytes: c.recvBytes.Load()}
}

// isKRPC reports whether b decodes as the library will decode it: a
// bencoded dictionary that fits krpc.Msg, trailing bytes allowed.
func isKRPC(b []byte) bool {
	if len(b) < 2 || b[0] != 'd' {
		return false
	}
	var m krpc.Msg
	err := bencode.Unmarshal(b, &m)
	if _, ok := err.(bencode.ErrUnusedTrailingBytes); ok {
		return true
	}
	return err == nil
}

// unmapped returns addr with an IPv4-mapped IPv6 address (what a
// dual-stack socket, such as the default ":0" one, reports for an IPv4
// sender) as the IPv4 address it maps. The DHT library knows nodes by
// their address's string: it would know one node both as
// [::ffff:198.51.100.7]:6881, from the datagrams it answered with, and as
// 198.51.100.7:6881, from other nodes' replies, and ask it, and put to
// it, twice in every traversal.
func unmapped(addr net.Addr) net.Addr {
	ua, ok := addr.(*net.UDPAddr)
	if !ok || len(ua.IP) != net.IPv6len {
		return addr
	}
	if ip4 := ua.IP.To4(); ip4 != nil {
		return &net.UDPAddr{IP: ip4, Port: ua.Port}
	}
	return addr
}
