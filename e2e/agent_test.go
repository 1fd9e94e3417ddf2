package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
)

// punchdropBin is the punchdrop binary under test, built once by TestMain.
var punchdropBin string

// Timeouts of the end-to-end tests, generous for a loaded 2-core CI box.
const (
	// agentStartTimeout covers start-up plus NAT discovery behind the
	// strictest NAT (filtering probes wait out their timeouts).
	agentStartTimeout = 20 * time.Second
	// connectTimeout is how long two agents may take to connect once both
	// have each other's string.
	connectTimeout = 30 * time.Second
	// testPunchTimeout shortens "cannot reach peer directly" for tests.
	testPunchTimeout = "8s"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "punchdrop-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	punchdropBin = filepath.Join(dir, "punchdrop")
	build := exec.Command("go", "build", "-o", punchdropBin, "github.com/punchdrop/punchdrop/cmd/punchdrop")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build punchdrop:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// agentProc is a punchdrop agent running in a lab host.
type agentProc struct {
	t    testing.TB
	name string
	home string
	host *lab.Host
	lab  *lab.Lab
	cmd  *exec.Cmd
	done chan struct{}
}

// startAgent runs `punchdrop agent` in host with a fresh home (or the
// given one, to restart a node) and waits until its NAT discovery is done.
func startAgent(t testing.TB, l *lab.Lab, host *lab.Host, name string, extra ...string) *agentProc {
	t.Helper()
	home := t.TempDir()
	writeConfig(t, home, "")
	return startAgentIn(t, l, host, name, home, extra...)
}

// writeConfig writes a test config to home: a short punch timeout, debug
// logs, and the DHT off (a test that wants it passes --dht-bootstrap with
// the lab's DHT nodes), then extra lines.
func writeConfig(t testing.TB, home, extra string) {
	t.Helper()
	cfg := fmt.Sprintf("punch_timeout = %q\nlog_level = \"debug\"\ndht = false\n%s", testPunchTimeout, extra)
	if err := os.WriteFile(filepath.Join(home, "config.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func startAgentIn(t testing.TB, l *lab.Lab, host *lab.Host, name, home string, extra ...string) *agentProc {
	t.Helper()
	return startAgentWith(t, l, host, name, home, agentSpec{args: extra})
}

// agentSpec says how to start an agent, beyond its host, name and home.
type agentSpec struct {
	args []string // more arguments of punchdrop agent
	env  []string // more environment, KEY=VALUE
	// ready says when the agent is ready for the test; nil means once
	// its NAT discovery found its public address (a dual-stack host has
	// a public IPv6 one at once: that one does not count).
	ready func(control.IDInfo) bool
}

func startAgentWith(t testing.TB, l *lab.Lab, host *lab.Host, name, home string, spec agentSpec) *agentProc {
	t.Helper()
	a := &agentProc{t: t, name: name, home: home, host: host, lab: l, done: make(chan struct{})}
	args := append([]string{"agent", "--home", home, "--name", name, "--stun", l.STUN()}, spec.args...)
	a.cmd = host.Command(context.Background(), punchdropBin, args...)
	a.cmd.Stdout, a.cmd.Stderr = nil, nil // the agent logs to its file too
	if len(spec.env) > 0 {
		a.cmd.Env = append(os.Environ(), spec.env...)
	}
	ready := spec.ready
	if ready == nil {
		ready = func(info control.IDInfo) bool {
			return info.PublicAddr != "" && (info.NAT.PublicAddr != "" || len(info.NAT.IPv6) == 0)
		}
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start agent %s: %v", name, err)
	}
	go func() { a.cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		a.stop()
		if t.Failed() {
			a.dumpLog()
		}
	})
	deadline := time.Now().Add(agentStartTimeout)
	for {
		info, err := a.id()
		if err == nil && ready(info) {
			return a
		}
		select {
		case <-a.done:
			a.dumpLog()
			t.Fatalf("agent %s exited during start-up", name)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent %s not ready after %s: %v (%+v)", name, agentStartTimeout, err, info)
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (a *agentProc) stop() {
	select {
	case <-a.done:
		return
	default:
	}
	a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
		a.t.Errorf("agent %s did not stop within 5 s of SIGINT", a.name)
		a.cmd.Process.Kill()
		<-a.done
	}
}

// log returns the agent's log so far.
func (a *agentProc) log() string {
	b, _ := os.ReadFile(filepath.Join(a.home, "punchdrop.log"))
	return string(b)
}

func (a *agentProc) dumpLog() {
	lines := strings.Split(strings.TrimSpace(a.log()), "\n")
	if len(lines) > 80 {
		lines = lines[len(lines)-80:]
	}
	a.t.Logf("--- log of agent %s ---\n%s", a.name, strings.Join(lines, "\n"))
}

// cli runs a punchdrop command against this agent's home.
func (a *agentProc) cli(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, punchdropBin, append([]string{"--home", a.home}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("punchdrop %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

func (a *agentProc) mustCLI(args ...string) string {
	a.t.Helper()
	out, err := a.cli(args...)
	if err != nil {
		a.t.Fatal(err)
	}
	return out
}

func (a *agentProc) id() (control.IDInfo, error) {
	var info control.IDInfo
	out, err := a.cli("id", "--json")
	if err != nil {
		return info, err
	}
	return info, json.Unmarshal([]byte(out), &info)
}

func (a *agentProc) peers() []control.PeerInfo {
	a.t.Helper()
	var peers []control.PeerInfo
	if err := json.Unmarshal([]byte(a.mustCLI("peers", "--json")), &peers); err != nil {
		a.t.Fatal(err)
	}
	return peers
}

func (a *agentProc) peer(nodeID string) control.PeerInfo {
	for _, p := range a.peers() {
		if p.NodeID == nodeID {
			return p
		}
	}
	return control.PeerInfo{}
}

func (a *agentProc) messages() []control.Message {
	a.t.Helper()
	var msgs []control.Message
	if err := json.Unmarshal([]byte(a.mustCLI("messages", "--json")), &msgs); err != nil {
		a.t.Fatal(err)
	}
	return msgs
}

func (a *agentProc) connString() string {
	a.t.Helper()
	info, err := a.id()
	if err != nil {
		a.t.Fatal(err)
	}
	return info.ConnectionString
}

func (a *agentProc) nodeID() string {
	a.t.Helper()
	info, err := a.id()
	if err != nil {
		a.t.Fatal(err)
	}
	return info.NodeID
}

// connectPair makes a and b peers of each other, b second.
func connectPair(t testing.TB, a, b *agentProc) {
	t.Helper()
	a.mustCLI("connect", b.connString())
	b.mustCLI("connect", a.connString())
}

// waitPeer polls a's view of peer until cond holds.
func waitPeer(t testing.TB, a *agentProc, peerID string, timeout time.Duration, what string, cond func(control.PeerInfo) bool) control.PeerInfo {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p := a.peer(peerID)
		if cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s's view of the peer after %s: %+v", what, a.name, timeout, p)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func connected(p control.PeerInfo) bool { return p.State == control.StateConnected }

// exchangeMessages sends one message each way and checks both arrived.
func exchangeMessages(t testing.TB, a, b *agentProc, tag string) {
	t.Helper()
	ab, ba := tag+": "+a.name+" to "+b.name, tag+": "+b.name+" to "+a.name
	a.mustCLI("msg", b.name, ab)
	b.mustCLI("msg", a.name, ba)
	if !hasMessage(b.messages(), ab) || !hasMessage(a.messages(), ba) {
		t.Fatalf("messages missing: %s has %+v, %s has %+v", b.name, b.messages(), a.name, a.messages())
	}
}

func hasMessage(msgs []control.Message, text string) bool {
	for _, m := range msgs {
		if m.Text == text {
			return true
		}
	}
	return false
}
