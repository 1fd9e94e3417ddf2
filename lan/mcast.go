package lan

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Where announcements go (see the package doc for the reasons).
var (
	Group4 = netip.MustParseAddr("239.255.112.100")
	Group6 = netip.MustParseAddr("ff12::7064")
)

// Port is the UDP port announcements go to, and every node listens on.
const Port = 24680

// multicastHops keeps announcements on the link: no router forwards a
// datagram whose TTL (hop limit) is 1.
const multicastHops = 1

// readBuffer holds any datagram a listener may get; announcements are
// AnnouncementSize bytes and anything else is dropped, so a little more
// lets a longer one be told apart from one that fits.
const readBuffer = AnnouncementSize + 1

// link is where announcements go out and come in: multicast on the LAN,
// or a simulated one in tests.
type link interface {
	// send sends b to every listener it can reach; an error means it
	// reached none.
	send(b []byte) error
	// refresh joins the group on interfaces that appeared.
	refresh()
	// run passes each datagram received, and where it came from, to got
	// until ctx ends.
	run(ctx context.Context, got func(b []byte, from netip.AddrPort))
	close() error
}

// family is one IP family's multicast socket.
type family struct {
	name   string
	conn   net.PacketConn
	group  net.Addr
	join   func(ifi *net.Interface) error
	setIf  func(ifi *net.Interface) error
	write  func(b []byte) error
	usable func(ifi net.Interface) bool // the interface has an address of this family
	joined map[int]bool                 // interface indexes
}

// mcast is the multicast link of both families; either may be missing
// (no IPv6 on the host, say).
type mcast struct {
	log      *slog.Logger
	mu       sync.Mutex // guards families' joined and interface choice
	families []*family
}

// listenMulticast opens the sockets of both families on port; it fails
// only if neither opens.
func listenMulticast(port int, log *slog.Logger) (*mcast, error) {
	m := &mcast{log: log}
	lc := net.ListenConfig{Control: reuse}
	var errs []error
	if c, err := lc.ListenPacket(context.Background(), "udp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(port))); err != nil {
		errs = append(errs, err)
	} else {
		p := ipv4.NewPacketConn(c)
		p.SetMulticastTTL(multicastHops)
		p.SetMulticastLoopback(true) // other agents of this host listen too
		group := &net.UDPAddr{IP: Group4.AsSlice(), Port: port}
		m.families = append(m.families, &family{
			name: "IPv4", conn: c, group: group,
			join:   func(ifi *net.Interface) error { return p.JoinGroup(ifi, group) },
			setIf:  p.SetMulticastInterface,
			write:  func(b []byte) error { _, err := p.WriteTo(b, nil, group); return err },
			usable: func(ifi net.Interface) bool { return hasAddr(ifi, func(a netip.Addr) bool { return a.Is4() }) },
			joined: map[int]bool{},
		})
	}
	if c, err := lc.ListenPacket(context.Background(), "udp6", net.JoinHostPort("::", strconv.Itoa(port))); err != nil {
		errs = append(errs, err)
	} else {
		p := ipv6.NewPacketConn(c)
		p.SetMulticastHopLimit(multicastHops)
		p.SetMulticastLoopback(true)
		group := &net.UDPAddr{IP: Group6.AsSlice(), Port: port}
		m.families = append(m.families, &family{
			name: "IPv6", conn: c, group: group,
			join:   func(ifi *net.Interface) error { return p.JoinGroup(ifi, group) },
			setIf:  p.SetMulticastInterface,
			write:  func(b []byte) error { _, err := p.WriteTo(b, nil, group); return err },
			usable: func(ifi net.Interface) bool { return hasAddr(ifi, netip.Addr.IsLinkLocalUnicast) },
			joined: map[int]bool{},
		})
	}
	if len(m.families) == 0 {
		return nil, fmt.Errorf("lan: listen on port %d: %w", port, errors.Join(errs...))
	}
	for _, err := range errs {
		log.Debug("lan: one IP family is not available", "err", err)
	}
	m.refresh()
	return m, nil
}

// hasAddr reports whether ifi has an address for which ok holds.
func hasAddr(ifi net.Interface, ok func(netip.Addr) bool) bool {
	addrs, err := ifi.Addrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && ok(p.Addr()) {
			return true
		}
	}
	return false
}

// multicastInterfaces lists the interfaces announcements go out on: up,
// multicast-capable, not loopback.
func multicastInterfaces() []net.Interface {
	all, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var out []net.Interface
	for _, ifi := range all {
		if ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagMulticast != 0 && ifi.Flags&net.FlagLoopback == 0 {
			out = append(out, ifi)
		}
	}
	return out
}

func (m *mcast) refresh() {
	ifaces := multicastInterfaces()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.families {
		for _, ifi := range ifaces {
			if f.joined[ifi.Index] || !f.usable(ifi) {
				continue
			}
			if err := f.join(&ifi); err != nil {
				m.log.Debug("lan: cannot join the group", "family", f.name, "interface", ifi.Name, "err", err)
				continue
			}
			f.joined[ifi.Index] = true
			m.log.Debug("lan: listening", "family", f.name, "interface", ifi.Name)
		}
	}
}

// send sends b to the group of each family on each interface that has an
// address of that family.
func (m *mcast) send(b []byte) error {
	ifaces := multicastInterfaces()
	m.mu.Lock()
	defer m.mu.Unlock()
	sent := 0
	var last error
	for _, f := range m.families {
		for _, ifi := range ifaces {
			if !f.usable(ifi) {
				continue
			}
			err := f.setIf(&ifi)
			if err == nil {
				err = f.write(b)
			}
			if err != nil {
				last = fmt.Errorf("%s on %s: %w", f.name, ifi.Name, err)
				continue
			}
			sent++
		}
	}
	if sent == 0 {
		if last == nil {
			last = errors.New("no multicast interface is up")
		}
		return fmt.Errorf("lan: announce: %w", last)
	}
	return nil
}

func (m *mcast) run(ctx context.Context, got func(b []byte, from netip.AddrPort)) {
	var wg sync.WaitGroup
	for _, f := range m.families {
		wg.Go(func() {
			buf := make([]byte, readBuffer)
			for {
				n, from, err := f.conn.ReadFrom(buf)
				if err != nil {
					if ctx.Err() == nil {
						m.log.Debug("lan: read", "family", f.name, "err", err)
					}
					return
				}
				if u, ok := from.(*net.UDPAddr); ok {
					got(buf[:n], u.AddrPort())
				}
			}
		})
	}
	<-ctx.Done()
	m.close()
	wg.Wait()
}

func (m *mcast) close() error {
	var errs []error
	for _, f := range m.families {
		errs = append(errs, f.conn.Close())
	}
	return errors.Join(errs...)
}
