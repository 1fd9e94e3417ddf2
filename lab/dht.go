package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"syscall"
	"time"

	"github.com/punchdrop/punchdrop/testutil"
)

// The lab's DHT nodes sit on the internet segment at 198.18.0.240 and up,
// above the addresses of the most sites a lab can have (198.18.0.210).
const (
	dhtNodeFirstHost = 240
	// MaxDHTNodes is how many DHT nodes a lab can run.
	MaxDHTNodes = 10
	// DHTPort is the UDP port of every lab DHT node, the DHT's usual one.
	DHTPort = 6881
)

// Timings of the lab's DHT nodes.
const (
	// dhtReadyTimeout bounds a node's start-up, until it answers a ping;
	// it takes milliseconds here, CI machines may be slower.
	dhtReadyTimeout = 10 * time.Second
	// dhtStopTimeout is how long SIGTERM gets before SIGKILL.
	dhtStopTimeout = 3 * time.Second
)

// DHTNode is a "punchdrop dht-node" process on the internet segment.
type DHTNode struct {
	// Addr is where the node listens; agents and other nodes bootstrap
	// from it.
	Addr netip.AddrPort
	cmd  *exec.Cmd
	log  *testutil.Buffer
	done chan struct{}
}

// Log returns what the node has logged so far (it runs with --log-stores,
// so every item it stored is there).
func (n *DHTNode) Log() string { return n.log.String() }

// StartDHTNodes runs n "punchdrop dht-node" processes of the binary bin on
// the internet segment, a private DHT: the first bootstraps from nobody,
// each other from the ones before it. It returns when every node answers
// a ping. Close stops them.
func (l *Lab) StartDHTNodes(ctx context.Context, bin string, n int) ([]*DHTNode, error) {
	var nodes []*DHTNode
	for range n {
		node, err := l.startDHTNode(ctx, bin, BootstrapFlags(nodes))
		if err != nil {
			return nodes, err
		}
		nodes = append(nodes, node)
	}
	return nodes, nil
}

// startDHTNode gives the internet bridge the next DHT address and starts a
// node there.
func (l *Lab) startDHTNode(ctx context.Context, bin string, bootstrap []string) (*DHTNode, error) {
	l.mu.Lock()
	i := l.dhtNodes
	l.dhtNodes++
	l.mu.Unlock()
	if i >= MaxDHTNodes {
		return nil, fmt.Errorf("start DHT node: at most %d per lab", MaxDHTNodes)
	}
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(dhtNodeFirstHost + i)}), DHTPort)
	if err := ipIn(l.inet, "addr", "add", prefixed(addr.Addr()), "dev", "br0"); err != nil {
		return nil, fmt.Errorf("start DHT node: %w", err)
	}
	node := &DHTNode{Addr: addr, log: &testutil.Buffer{}, done: make(chan struct{})}
	args := append([]string{"dht-node", "--listen", addr.String(), "--log-stores", "--stats", "0"}, bootstrap...)
	node.cmd = commandIn(context.Background(), l.inet, bin, args...)
	node.cmd.Stdout, node.cmd.Stderr = node.log, node.log
	if err := node.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start DHT node: %w", err)
	}
	go func() { node.cmd.Wait(); close(node.done) }()
	l.pushUndo(node.stop)
	if err := waitForDHT(ctx, l.inet, addr, node.done); err != nil {
		return nil, fmt.Errorf("start DHT node at %s: %w; its log:\n%s", addr, err, node.Log())
	}
	return node, nil
}

// stop ends the node by its PID.
func (n *DHTNode) stop() error {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(dhtStopTimeout):
		n.cmd.Process.Kill()
		<-n.done
	}
	return nil
}

// dhtPing is a KRPC ping query (BEP 5) from the ID "punchdroplabprobe..."
// with transaction ID "lp".
const dhtPing = "d1:ad2:id20:punchdroplabprobe000e1:q4:ping1:t2:lp1:y1:qe"

// waitForDHT pings the DHT node at addr from inside ns until it answers.
func waitForDHT(ctx context.Context, ns string, addr netip.AddrPort, exited <-chan struct{}) error {
	conn, err := ListenUDPIn(ns, netip.AddrPort{})
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, dhtReadyTimeout)
	defer cancel()
	buf := make([]byte, 1500)
	for {
		select {
		case <-exited:
			return errors.New("dht-node exited")
		case <-ctx.Done():
			return fmt.Errorf("no answer to a ping: %w", ctx.Err())
		default:
		}
		conn.WriteToUDPAddrPort([]byte(dhtPing), addr)
		conn.SetReadDeadline(time.Now().Add(readyProbeInterval))
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err == nil && bytes.Contains(buf[:n], []byte("1:t2:lp1:y1:r")) {
			return nil
		}
	}
}

// BootstrapFlags returns "--bootstrap ADDR" for each node, for a command
// line.
func BootstrapFlags(nodes []*DHTNode) []string {
	var args []string
	for _, n := range nodes {
		args = append(args, "--bootstrap", n.Addr.String())
	}
	return args
}
