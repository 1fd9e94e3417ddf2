package nat

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/punchdrop/punchdrop/testutil"
)

// Loopback addresses of the test STUN server. Linux routes all of
// 127.0.0.0/8 to lo, so 127.0.0.2 needs no setup and no root.
var (
	coturnIP1 = netip.MustParseAddr("127.0.0.1")
	coturnIP2 = netip.MustParseAddr("127.0.0.2")
)

const (
	// coturnStartTimeout bounds the wait for a fresh turnserver to answer;
	// it is usually ready in ~100 ms, but a loaded CI machine is slower.
	coturnStartTimeout = 10 * time.Second
	// coturnStopTimeout is how long turnserver gets to exit on SIGTERM
	// before SIGKILL.
	coturnStopTimeout = 3 * time.Second
	// coturnPortTries bounds the search for a free pair of ports.
	coturnPortTries = 20
)

// startCoturn starts a real coturn STUN server on loopback with RFC 5780
// (two addresses, two ports) and returns its primary address and its
// alternate address (other IP, other port). It is killed by PID when t ends.
func startCoturn(t testing.TB) (primary, alt netip.AddrPort) {
	t.Helper()
	p := startCoturnOn(t, coturnIP1, coturnIP2)
	return netip.AddrPortFrom(coturnIP1, p), netip.AddrPortFrom(coturnIP2, p+1)
}

// startCoturnSingle starts coturn on 127.0.0.1 only; without a second
// address it answers CHANGE-REQUEST with error 420.
func startCoturnSingle(t testing.TB) netip.AddrPort {
	t.Helper()
	return netip.AddrPortFrom(coturnIP1, startCoturnOn(t, coturnIP1))
}

// startCoturnOn runs turnserver listening on ips at ports P and P+1 and
// returns P once the server answers a Binding request.
func startCoturnOn(t testing.TB, ips ...netip.Addr) uint16 {
	t.Helper()
	bin, err := exec.LookPath("turnserver")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("turnserver (coturn) is required in CI: %v", err)
		}
		t.Skipf("turnserver (coturn) not installed: %v", err)
	}
	for range coturnPortTries {
		p := uint16(20000 + rand.IntN(40000))
		// coturn binds with SO_REUSEPORT and so never fails on a port in
		// use: it would silently share it with whatever holds it. Check
		// that the ports are free first, with plain binds.
		if !portsFree(ips, p, p+1) {
			continue
		}
		if ok := runCoturn(t, bin, ips, p); ok {
			return p
		}
	}
	t.Fatalf("could not start turnserver after %d tries", coturnPortTries)
	return 0
}

// portsFree reports whether UDP ports are free on every ip.
func portsFree(ips []netip.Addr, ports ...uint16) bool {
	var conns []*net.UDPConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, ip := range ips {
		for _, p := range ports {
			c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, p)))
			if err != nil {
				return false
			}
			conns = append(conns, c)
		}
	}
	return true
}

// runCoturn starts one turnserver at port p and waits until it answers. On
// failure it stops the process and returns false; on success the process
// is stopped in t.Cleanup.
func runCoturn(t testing.TB, bin string, ips []netip.Addr, p uint16) bool {
	t.Helper()
	dir := t.TempDir()
	pidfile := filepath.Join(dir, "turnserver.pid")
	args := []string{"-n"}
	for _, ip := range ips {
		args = append(args, "-L", ip.String())
	}
	args = append(args,
		"--listening-port="+strconv.Itoa(int(p)),
		"--alt-listening-port="+strconv.Itoa(int(p)+1),
		"--no-auth", "--no-cli", "--stun-only", "--no-tls", "--no-dtls", "--no-tcp",
		"--log-file=stdout", "--simple-log",
		"--pidfile="+pidfile,
		"--db="+filepath.Join(dir, "turndb"), // not the shared /var/lib/turn/turndb
	)
	cmd := exec.Command(bin, args...)
	var out testutil.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so a ^C to `go test` does not race our stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start turnserver: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		// Only the process we started, by its PID.
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(coturnStopTimeout):
			cmd.Process.Kill()
			<-exited
		}
	}

	err := waitCoturn(netip.AddrPortFrom(ips[0], p), exited)
	if err != nil {
		stop()
		t.Logf("turnserver on port %d: %v; output:\n%s", p, err, out.String())
		return false
	}
	if b, err := os.ReadFile(pidfile); err == nil {
		if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid != cmd.Process.Pid {
			t.Logf("turnserver pidfile says %d, started %d", pid, cmd.Process.Pid)
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("turnserver on port %d output:\n%s", p, out.String())
		}
	})
	return true
}

// waitCoturn polls server with Binding requests until one is answered.
func waitCoturn(server netip.AddrPort, exited <-chan struct{}) error {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer conn.Close()
	c := NewSTUNClient(conn)
	go readLoop(conn, c)
	deadline := time.Now().Add(coturnStartTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("turnserver exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := c.Binding(ctx, server, NoChange)
		cancel()
		if err == nil {
			return nil
		}
	}
	return fmt.Errorf("no answer within %v", coturnStartTimeout)
}

// readLoop mimics the node's one reader goroutine: it reads the socket and
// hands STUN datagrams to the client, until the socket is closed.
func readLoop(conn *net.UDPConn, c *STUNClient) {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if stun.IsMessage(buf[:n]) {
			c.HandleSTUN(buf[:n], from)
		}
	}
}
