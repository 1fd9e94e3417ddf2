// Command demo builds a two-NAT lab on this machine, starts two punchdrop
// agents behind different NATs, connects them, exchanges a message and sends a file,
// saying in plain words what happens at each step. It needs root.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
)

// readyTimeout bounds an agent's start-up including NAT discovery.
const readyTimeout = 20 * time.Second

func main() {
	bin := flag.String("bin", "bin/punchdrop", "punchdrop binary to run")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) { fmt.Printf("\n==> "+format+"\n", args...) }

func run(ctx context.Context, bin string) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if err := lab.Available(); err != nil {
		return fmt.Errorf("%w (run as root: sudo make demo)", err)
	}
	step("Building a small internet in network namespaces, with a STUN server at %s", "198.18.0.2:3478")
	l, err := lab.Build(ctx)
	if err != nil {
		return err
	}
	defer func() {
		step("Cleaning up: stopping agents and deleting the namespaces")
		l.Close()
	}()
	siteA, err := l.NewSite(lab.FullCone)
	if err != nil {
		return err
	}
	siteB, err := l.NewSite(lab.Symmetric)
	if err != nil {
		return err
	}
	hostA, err := siteA.NewHost()
	if err != nil {
		return err
	}
	hostB, err := siteB.NewHost()
	if err != nil {
		return err
	}
	fmt.Printf("    alice: %s behind a full-cone NAT (public %s)\n", hostA.IP(), siteA.PublicIP())
	fmt.Printf("    bob:   %s behind a symmetric NAT (public %s)\n", hostB.IP(), siteB.PublicIP())

	step("Starting an agent for each (punchdrop agent)")
	alice, err := startAgent(ctx, bin, l, hostA, "alice")
	if err != nil {
		return err
	}
	defer alice.stop()
	bob, err := startAgent(ctx, bin, l, hostB, "bob")
	if err != nil {
		return err
	}
	defer bob.stop()
	for _, a := range []*agent{alice, bob} {
		var info control.IDInfo
		if err := a.cliJSON(&info, "id", "--json"); err != nil {
			return err
		}
		fmt.Printf("    %-5s sees public address %s: %s\n", a.name, info.PublicAddr, info.NAT.Summary)
		a.conn = info.ConnectionString
	}

	step("They swap connection strings (punchdrop id) and paste each other's (punchdrop connect)")
	fmt.Printf("    alice's string: %s\n", alice.conn)
	if _, err := alice.cli("connect", bob.conn); err != nil {
		return err
	}
	start := time.Now()
	if _, err := bob.cli("connect", alice.conn); err != nil {
		return err
	}
	step("Both punch holes through their NATs; the symmetric side is reached on the address its probes come from")
	for {
		var peers []control.PeerInfo
		if err := alice.cliJSON(&peers, "peers", "--json"); err != nil {
			return err
		}
		if len(peers) == 1 && peers[0].State == control.StateConnected {
			fmt.Printf("    connected after %s: path %s, bob at %s, round trip %.2f ms\n", time.Since(start).Round(time.Millisecond), peers[0].Path, peers[0].Addr, peers[0].RTTms)
			break
		}
		if time.Since(start) > 30*time.Second {
			return fmt.Errorf("alice and bob did not connect: %+v", peers)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	out, _ := alice.cli("peers")
	fmt.Print(indent(out))

	step("alice sends a message over the encrypted QUIC session (punchdrop msg bob ...)")
	if _, err := alice.cli("msg", "bob", "hello from behind two NATs"); err != nil {
		return err
	}
	out, err = bob.cli("messages")
	if err != nil {
		return err
	}
	fmt.Printf("    bob's messages:\n%s", indent(out))

	step("alice sends bob a 64 MiB file in hashed 1 MiB chunks (punchdrop send --wait bob ...)")
	src, err := demoFile(alice.home, 64<<20)
	if err != nil {
		return err
	}
	sendStart := time.Now()
	out, err = alice.cli("send", "--wait", "bob", src)
	if err != nil {
		return err
	}
	elapsed := time.Since(sendStart)
	fmt.Print(indent(out))
	got := filepath.Join(bob.home, "Downloads", filepath.Base(src))
	same, err := sameContent(src, got)
	if err != nil {
		return err
	}
	fmt.Printf("    %.0f MB/s; bob's copy %s is byte-identical: %v\n", float64(64<<20)/1e6/elapsed.Seconds(), got, same)
	out, _ = bob.cli("status")
	fmt.Printf("    bob's status:\n%s", indent(out))
	step("Done: no server carried any of this; the STUN server only told each side its public address")
	return nil
}

// demoFile writes size pseudo-random bytes into dir.
func demoFile(dir string, size int64) (string, error) {
	path := filepath.Join(dir, "holiday-video.bin")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	_, err = io.CopyN(f, rand.NewChaCha8([32]byte{42}), size)
	return path, err
}

// sameContent compares two files by SHA-256.
func sameContent(a, b string) (bool, error) {
	var sums [2][32]byte
	for i, p := range []string{a, b} {
		f, err := os.Open(p)
		if err != nil {
			return false, err
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return false, err
		}
		copy(sums[i][:], h.Sum(nil))
	}
	return sums[0] == sums[1], nil
}

type agent struct {
	name, bin, home, conn string
	cmd                   *exec.Cmd
	done                  chan struct{}
}

func startAgent(ctx context.Context, bin string, l *lab.Lab, h *lab.Host, name string) (*agent, error) {
	home, err := os.MkdirTemp("", "punchdrop-demo-"+name+"-")
	if err != nil {
		return nil, err
	}
	a := &agent{name: name, bin: bin, home: home, done: make(chan struct{})}
	// The lab has no DHT nodes: --dht-bootstrap none keeps the agents off
	// the public one.
	a.cmd = h.Command(context.Background(), bin, "agent", "--home", home, "--name", name, "--stun", l.STUN(), "--dht-bootstrap", "none")
	if err := a.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { a.cmd.Wait(); close(a.done) }()
	deadline := time.Now().Add(readyTimeout)
	for {
		var info control.IDInfo
		if err := a.cliJSON(&info, "id", "--json"); err == nil && info.PublicAddr != "" {
			return a, nil
		}
		select {
		case <-a.done:
			return nil, fmt.Errorf("agent %s exited; see %s", name, filepath.Join(home, "punchdrop.log"))
		case <-ctx.Done():
			a.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			a.stop()
			return nil, fmt.Errorf("agent %s not ready after %s", name, readyTimeout)
		}
	}
}

func (a *agent) stop() {
	a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
		a.cmd.Process.Kill()
		<-a.done
	}
	os.RemoveAll(a.home)
}

func (a *agent) cli(args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command(a.bin, append([]string{"--home", a.home}, args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: punchdrop %s: %s", a.name, strings.Join(args, " "), strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func (a *agent) cliJSON(v any, args ...string) error {
	out, err := a.cli(args...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return errors.Join(fmt.Errorf("%s: decode %s", a.name, args[0]), err)
	}
	return nil
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "      " + strings.Join(lines, "\n      ") + "\n"
}
