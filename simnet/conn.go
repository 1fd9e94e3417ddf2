package simnet

import (
	"container/heap"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// maxQueued bounds the datagrams waiting to be read on one Conn, as a
// socket's receive buffer does; past it new ones are dropped. 4096
// full-size datagrams are ~5 MiB, about what a tuned UDP socket holds.
const maxQueued = 4096

// Conn is a UDP socket on a simulated host. It implements net.PacketConn
// and is what quic-go needs of one: it has no GSO, ECN or DF, so quic-go
// uses it as a plain PacketConn.
type Conn struct {
	net  *Net
	host *Host
	addr netip.AddrPort

	wake chan struct{} // signalled when something a reader waits for changed

	mu           sync.Mutex // guards following
	queue        packetQueue
	seq          uint64 // arrival order, to keep equal due times in order
	closed       bool
	readDeadline time.Time
}

var _ net.PacketConn = (*Conn)(nil)

// packet is a datagram on its way to a Conn.
type packet struct {
	from netip.AddrPort
	data []byte
	due  time.Time // when it may be read
	seq  uint64
}

// packetQueue orders packets by due time, then arrival.
type packetQueue []packet

func (q packetQueue) Len() int { return len(q) }
func (q packetQueue) Less(i, j int) bool {
	if !q[i].due.Equal(q[j].due) {
		return q[i].due.Before(q[j].due)
	}
	return q[i].seq < q[j].seq
}
func (q packetQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *packetQueue) Push(x any)   { *q = append(*q, x.(packet)) }
func (q *packetQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	*q = old[:len(old)-1]
	return p
}

func newConn(n *Net, h *Host, addr netip.AddrPort) *Conn {
	return &Conn{net: n, host: h, addr: addr, wake: make(chan struct{}, 1)}
}

func (c *Conn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// deliver queues a datagram for reading at due; it reports false when
// the socket is closed or its queue is full.
func (c *Conn) deliver(from netip.AddrPort, data []byte, due time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.queue) >= maxQueued {
		return false
	}
	c.seq++
	heap.Push(&c.queue, packet{from: from, data: data, due: due, seq: c.seq})
	c.signal()
	return true
}

// ReadFrom reads the next datagram that is due.
func (c *Conn) ReadFrom(b []byte) (int, net.Addr, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return 0, nil, c.opError("read", net.ErrClosed)
		}
		now := time.Now()
		if !c.readDeadline.IsZero() && !now.Before(c.readDeadline) {
			c.mu.Unlock()
			return 0, nil, c.opError("read", os.ErrDeadlineExceeded)
		}
		if len(c.queue) > 0 && !c.queue[0].due.After(now) {
			p := heap.Pop(&c.queue).(packet)
			if len(c.queue) > 0 {
				c.signal() // for another reader
			}
			c.mu.Unlock()
			return copy(b, p.data), net.UDPAddrFromAddrPort(p.from), nil
		}
		var until time.Time
		if len(c.queue) > 0 {
			until = c.queue[0].due
		}
		if !c.readDeadline.IsZero() && (until.IsZero() || c.readDeadline.Before(until)) {
			until = c.readDeadline
		}
		c.mu.Unlock()
		var expired <-chan time.Time
		if !until.IsZero() {
			if timer == nil {
				timer = time.NewTimer(until.Sub(now))
			} else {
				timer.Reset(until.Sub(now))
			}
			expired = timer.C
		}
		select {
		case <-c.wake:
		case <-expired:
		}
	}
}

// WriteTo sends a datagram through the simulated network. As with UDP, a
// datagram that is lost, filtered or has no receiver is dropped silently.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return 0, c.opError("write", net.ErrClosed)
	}
	dst, err := addrPortOf(addr)
	if err != nil {
		return 0, c.opError("write", err)
	}
	c.net.send(c, dst, b)
	return len(b), nil
}

// Close closes the socket; blocked reads return net.ErrClosed.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return c.opError("close", net.ErrClosed)
	}
	c.closed = true
	c.queue = nil
	c.mu.Unlock()
	c.signal()
	c.host.unbind(c)
	return nil
}

// LocalAddr returns the socket's address on its host, a *net.UDPAddr.
func (c *Conn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.addr) }

// AddrPort returns the socket's address on its host.
func (c *Conn) AddrPort() netip.AddrPort { return c.addr }

// SetDeadline sets the read deadline; writes never block.
func (c *Conn) SetDeadline(t time.Time) error { return c.SetReadDeadline(t) }

// SetReadDeadline makes reads fail with os.ErrDeadlineExceeded from t on.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline = t
	c.mu.Unlock()
	c.signal()
	return nil
}

// SetWriteDeadline does nothing: writes never block.
func (c *Conn) SetWriteDeadline(time.Time) error { return nil }

// SetReadBuffer and SetWriteBuffer accept any size, so quic-go does not
// warn that it cannot size a socket's buffers; the queue is maxQueued.
func (c *Conn) SetReadBuffer(int) error { return nil }

// SetWriteBuffer: see SetReadBuffer.
func (c *Conn) SetWriteBuffer(int) error { return nil }

func (c *Conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "udp", Addr: c.LocalAddr(), Err: err}
}

// addrPortOf reads a destination address.
func addrPortOf(a net.Addr) (netip.AddrPort, error) {
	if u, ok := a.(*net.UDPAddr); ok {
		ap := u.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	ap, err := netip.ParseAddrPort(a.String())
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), err
}
