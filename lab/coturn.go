package lab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Timings of the lab's STUN server.
const (
	// coturnReadyTimeout bounds coturn's start-up; it answers within
	// ~100 ms here, CI machines may be slower.
	coturnReadyTimeout = 10 * time.Second
	// coturnStopTimeout is how long SIGTERM gets before SIGKILL.
	coturnStopTimeout = 3 * time.Second
	// readyProbeInterval is the gap between binding requests while
	// waiting for coturn.
	readyProbeInterval = 100 * time.Millisecond
)

// coturn is a turnserver process answering STUN inside a namespace.
type coturn struct {
	cmd  *exec.Cmd
	dir  string
	log  *bytes.Buffer
	done chan struct{}
}

// startCoturn runs coturn on two addresses of ns: with two listening
// addresses it enables RFC 5780 (OTHER-ADDRESS, CHANGE-REQUEST).
func startCoturn(ctx context.Context, ns string, primary, alternate netip.Addr) (*coturn, error) {
	dir, err := os.MkdirTemp("", "punchdrop-coturn-")
	if err != nil {
		return nil, fmt.Errorf("start coturn: %w", err)
	}
	c := &coturn{dir: dir, log: &bytes.Buffer{}, done: make(chan struct{})}
	c.cmd = exec.Command("ip", "netns", "exec", ns, "turnserver",
		"-n", // ignore /etc/turnserver.conf (it says no-rfc5780)
		"-L", primary.String(), "-L", alternate.String(),
		"--listening-port="+strconv.Itoa(STUNPort), "--alt-listening-port="+strconv.Itoa(STUNPort+1),
		"--no-auth", "--no-cli", "--stun-only", "--no-tls", "--no-dtls", "--no-tcp",
		"--log-file=stdout", "--simple-log",
		"--pidfile="+filepath.Join(dir, "turnserver.pid"),
		"--db="+filepath.Join(dir, "turndb"), // not the shared /var/lib/turn/turndb
	)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start coturn: %w", err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	if err := waitForSTUN(ctx, ns, netip.AddrPortFrom(primary, STUNPort), c.done); err != nil {
		c.stop()
		return nil, fmt.Errorf("start coturn: %w; its log:\n%s", err, c.log.String())
	}
	return c, nil
}

// stop ends coturn by its PID (a leftover coturn would share the port via
// SO_REUSEPORT and answer another lab's requests).
func (c *coturn) stop() error {
	defer os.RemoveAll(c.dir)
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(coturnStopTimeout):
		c.cmd.Process.Kill()
		<-c.done
	}
	return nil
}

// waitForSTUN sends binding requests from inside ns until server answers.
func waitForSTUN(ctx context.Context, ns string, server netip.AddrPort, exited <-chan struct{}) error {
	conn, err := ListenUDPIn(ns, netip.AddrPort{})
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, coturnReadyTimeout)
	defer cancel()
	req := bindingRequest()
	buf := make([]byte, 1500)
	for {
		select {
		case <-exited:
			return errors.New("turnserver exited")
		case <-ctx.Done():
			return fmt.Errorf("no STUN answer from %s: %w", server, ctx.Err())
		default:
		}
		conn.WriteToUDPAddrPort(req, server)
		conn.SetReadDeadline(time.Now().Add(readyProbeInterval))
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err == nil && n >= 20 && bytes.Equal(buf[8:20], req[8:20]) {
			return nil
		}
	}
}

// bindingRequest is a bare RFC 5389 Binding request: type 0x0001, no
// attributes, the magic cookie and a random transaction ID.
func bindingRequest() []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:], 0x0001)
	binary.BigEndian.PutUint32(b[4:], 0x2112A442)
	rand.Read(b[8:])
	return b
}

// ListenUDPIn opens a UDP socket inside namespace ns: IPv6 if addr is an
// IPv6 address, else IPv4. The socket stays in that namespace for its
// whole life, whichever goroutine uses it.
func ListenUDPIn(ns string, addr netip.AddrPort) (*net.UDPConn, error) {
	network := "udp4"
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		network = "udp6"
	}
	var conn *net.UDPConn
	err := inNamespace(ns, func() error {
		var err error
		conn, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("listen UDP in %s: %w", ns, err)
	}
	return conn, nil
}
