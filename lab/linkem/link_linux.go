package linkem

import (
	"container/heap"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxFrame is the largest frame read: the interfaces carry a 1500-byte
// MTU, and offloads are off, so no frame is larger than this.
const maxFrame = 1 << 16

// socketBuffer is each packet socket's kernel buffer: a burst of a few
// thousand full frames while the sender is busy is taken, not dropped.
const socketBuffer = 8 << 20

// Link bridges two interfaces, shaping what crosses it. Both interfaces
// carry nothing else: the Link is the wire between them.
type Link struct {
	up, down *direction
	done     chan struct{}
	wg       sync.WaitGroup
}

// Start bridges interfaces a and b of the calling thread's network
// namespace. The sockets stay in that namespace whichever goroutine uses
// them, so a caller may switch namespaces just around Start.
func Start(a, b string, cfg Config) (*Link, error) {
	if err := errors.Join(cfg.Up.Validate(), cfg.Down.Validate()); err != nil {
		return nil, err
	}
	pa, err := openPort(a)
	if err != nil {
		return nil, err
	}
	pb, err := openPort(b)
	if err != nil {
		pa.close()
		return nil, err
	}
	l := &Link{done: make(chan struct{})}
	l.up = newDirection(pa, pb, cfg.Up, 1)
	l.down = newDirection(pb, pa, cfg.Down, 2)
	for _, d := range []*direction{l.up, l.down} {
		l.wg.Go(func() { d.read(l.done) })
		l.wg.Go(func() { d.send(l.done) })
	}
	return l, nil
}

// Set changes the link's shape from now on; frames in flight keep the
// times they were given.
func (l *Link) Set(cfg Config) error {
	if err := errors.Join(cfg.Up.Validate(), cfg.Down.Validate()); err != nil {
		return err
	}
	l.up.set(cfg.Up)
	l.down.set(cfg.Down)
	return nil
}

// Stats returns the counts of each direction so far.
func (l *Link) Stats() (up, down Stats) { return l.up.stats(), l.down.stats() }

// Close stops the link; nothing crosses it any more.
func (l *Link) Close() error {
	close(l.done)
	l.up.in.close()
	l.down.in.close()
	l.wg.Wait()
	return nil
}

// port is a packet socket bound to one interface.
type port struct {
	name    string
	ifindex int
	file    *os.File
	raw     syscall.RawConn
}

func openPort(name string) (*port, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return nil, fmt.Errorf("link %s: packet socket: %w", name, err)
	}
	err = errors.Join(
		unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}),
		unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}),
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer),
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBuffer),
	)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), "packet:"+name) // non-blocking: the runtime poller waits for it
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("link %s: %w", name, err)
	}
	return &port{name: name, ifindex: ifi.Index, file: f, raw: raw}, nil
}

func (p *port) close() { p.file.Close() }

// recv reads the next frame that arrived on the interface (not one this
// socket sent out of it) into buf.
func (p *port) recv(buf []byte) (int, error) {
	for {
		var n int
		var from unix.Sockaddr
		var err error
		rerr := p.raw.Read(func(fd uintptr) bool {
			n, from, err = unix.Recvfrom(int(fd), buf, 0)
			return err != unix.EAGAIN
		})
		if rerr != nil {
			return 0, rerr
		}
		if err != nil {
			return 0, err
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue // what we (or the kernel) sent out of this interface
		}
		return n, nil
	}
}

// transmit sends a frame out of the interface.
func (p *port) transmit(frame []byte) error {
	to := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: p.ifindex}
	var err error
	werr := p.raw.Write(func(fd uintptr) bool {
		err = unix.Sendto(int(fd), frame, 0, to)
		return err != unix.EAGAIN
	})
	if werr != nil {
		return werr
	}
	return err
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// direction carries frames from in to out.
type direction struct {
	in, out *port

	mu     sync.Mutex // guards following
	shaper *shaper
	queue  frameHeap     // frames in flight, by time of leaving
	seq    uint64        // frames queued so far: breaks ties in order
	wake   chan struct{} // a frame was queued

	frames, lost, overrun, sent atomic.Uint64
}

func newDirection(in, out *port, s Shape, seed uint64) *direction {
	return &direction{in: in, out: out, shaper: newShaper(s, uint64(time.Now().UnixNano())^seed), wake: make(chan struct{}, 1)}
}

func (d *direction) set(s Shape) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.shaper.set(s)
}

func (d *direction) stats() Stats {
	return Stats{Frames: d.frames.Load(), Lost: d.lost.Load(), Overrun: d.overrun.Load(), Sent: d.sent.Load()}
}

// read takes frames off the in port and queues those the shape lets
// through, until done.
func (d *direction) read(done <-chan struct{}) {
	buf := make([]byte, maxFrame)
	for {
		n, err := d.in.recv(buf)
		if err != nil {
			select {
			case <-done:
				return
			default:
				continue // a transient error on a live link: keep going
			}
		}
		d.frames.Add(1)
		d.mu.Lock()
		at, v := d.shaper.admit(n, time.Now())
		if v == pass {
			d.seq++
			heap.Push(&d.queue, frame{at: at, seq: d.seq, data: append([]byte(nil), buf[:n]...)})
		}
		d.mu.Unlock()
		switch v {
		case pass:
			select {
			case d.wake <- struct{}{}:
			default:
			}
		case lost:
			d.lost.Add(1)
		case overrun:
			d.overrun.Add(1)
		}
	}
}

// timerSlack is how early a frame may leave. Go's timers wake up to a
// millisecond late here (the poller sleeps in whole milliseconds), which
// would add a millisecond to every hop; waking half of that early and
// sending what is due within the slack centres the error on zero.
const timerSlack = 500 * time.Microsecond

// send passes frames on to the out port when their time comes.
func (d *direction) send(done <-chan struct{}) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		d.mu.Lock()
		now := time.Now()
		var due []frame
		for d.queue.Len() > 0 && !d.queue[0].at.After(now.Add(timerSlack)) {
			due = append(due, heap.Pop(&d.queue).(frame))
		}
		wait := time.Hour
		if d.queue.Len() > 0 {
			wait = d.queue[0].at.Sub(now) - timerSlack
		}
		d.mu.Unlock()
		for _, f := range due {
			if d.out.transmit(f.data) == nil {
				d.sent.Add(1)
			}
		}
		if len(due) > 0 {
			continue // more may have come due while sending
		}
		timer.Reset(wait)
		select {
		case <-done:
			return
		case <-d.wake:
		case <-timer.C:
		}
	}
}

// frame is a frame in flight and when it leaves the link.
type frame struct {
	at   time.Time
	seq  uint64 // order of arrival
	data []byte
}

// frameHeap orders frames by the time they leave, and frames of the
// same time by their arrival: the shaper gives in-order frames equal
// times when it keeps them from overtaking.
type frameHeap []frame

func (h frameHeap) Len() int { return len(h) }
func (h frameHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h frameHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *frameHeap) Push(x any)   { *h = append(*h, x.(frame)) }
func (h *frameHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	*h = old[:len(old)-1]
	return f
}
