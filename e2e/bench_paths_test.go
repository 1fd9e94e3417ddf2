package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/agent"
	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
	"github.com/punchdrop/punchdrop/lab/linkem"
)

// Benchmarks on emulated internet paths (issue 16): alice, behind a
// full-cone NAT whose uplink is an emulated link (lab/linkem: 100 Mbit/s
// each way, a round trip of 50 or 150 ms, random loss each way), sends
// to bob, behind a port-restricted NAT. Every tool moves the same file
// the same way, alice to bob, across that link once: punchdrop peer to
// peer, a bare quic-go stream (lab/quicperf), iperf3 TCP, and croc v10
// through its relay on the public side, as croc users send. One table
// of goodput, with ratios to the link and to croc.
//
// A run that would take longer than the cap is stopped there, and its
// goodput taken from what had arrived (marked "capped"). The
// environment picks a subset, for development:
//
//	PUNCHDROP_BENCH_RTT   round trips in ms            (default "50,150")
//	PUNCHDROP_BENCH_LOSS  random loss in %, each way    (default "0,0.5,2")
//	PUNCHDROP_BENCH_ROWS  row keys, comma-separated     (default: all rows)
//	PUNCHDROP_BENCH_SIZE  bytes each transfer moves     (default 1 GiB)
//	PUNCHDROP_BENCH_CAP   the cap of one run            (default 150s)
//
// and -bench 'RealPaths/rtt50ms-loss0.5%' picks one path.

// pathRate is the emulated link's rate each way: the 100 Mbit/s.
const pathRate = 100_000_000

// pathSettings are what the environment chose.
type pathSettings struct {
	rtts   []time.Duration
	losses []float64 // probabilities
	rows   []pathRow
	size   int64
	cap    time.Duration
}

// pathRow is a row of the table: a tool, or an option of one.
type pathRow struct {
	key  string // for PUNCHDROP_BENCH_ROWS
	name string
	run  func(b *testing.B, x *pathLab) goodput
}

// goodput is what one run moved, and in how long.
type goodput struct {
	bytes  int64
	took   time.Duration
	capped bool   // stopped at the cap: the rate of what had arrived
	failed string // the tool gave up (croc does, on some lossy paths): why
}

func (g goodput) mibps() float64 { return float64(g.bytes) / (1 << 20) / g.took.Seconds() }

// allPathRows are the table's rows: the four tools, then options of
// punchdrop (lanes) and of quic-go (connections, receive windows).
var allPathRows = []pathRow{
	{"punchdrop", fmt.Sprintf("punchdrop (%d lanes, CUBIC: default)", agent.DefaultLanes), func(b *testing.B, x *pathLab) goodput { return x.punchdrop(b, agent.DefaultLanes, "") }},
	{"quic", "quic-go stream", func(b *testing.B, x *pathLab) goodput { return x.quic(b, 1, 0, 0) }},
	{"iperf3", "iperf3 TCP", func(b *testing.B, x *pathLab) goodput { return x.iperf3(b) }},
	{"croc", "croc v10 via relay", func(b *testing.B, x *pathLab) goodput { return x.croc(b) }},
	{"punchdrop-reno", fmt.Sprintf("punchdrop (%d lanes, NewReno: stock quic-go)", agent.DefaultLanes), func(b *testing.B, x *pathLab) goodput { return x.punchdrop(b, agent.DefaultLanes, "reno") }},
	{"punchdrop-0", "punchdrop, 1 connection (lanes 0)", func(b *testing.B, x *pathLab) goodput { return x.punchdrop(b, 0, "") }},
	{"punchdrop-2", "punchdrop, 2 lanes", func(b *testing.B, x *pathLab) goodput { return x.punchdrop(b, 2, "") }},
	{"punchdrop-4", "punchdrop, 4 lanes", func(b *testing.B, x *pathLab) goodput { return x.punchdrop(b, 4, "") }},
	{"punchdrop-8", "punchdrop, 8 lanes", func(b *testing.B, x *pathLab) goodput { return x.punchdrop(b, 8, "") }},
	{"quic-cubic", "quic-go stream, CUBIC emulating 8", func(b *testing.B, x *pathLab) goodput { return x.quic(b, 1, 0, 8) }},
	{"quic-8", "quic-go, 8 connections", func(b *testing.B, x *pathLab) goodput { return x.quic(b, 8, 0, 0) }},
	{"quic-window", "quic-go, 24 MiB windows", func(b *testing.B, x *pathLab) goodput { return x.quic(b, 1, 24<<20, 0) }},
}

// readPathSettings reads the environment (see above).
func readPathSettings(b *testing.B) pathSettings {
	b.Helper()
	s := pathSettings{size: 1 << 30, cap: 150 * time.Second}
	list := func(name, dflt string) []string { return strings.Split(cmpOrEnv(name, dflt), ",") }
	for _, v := range list("PUNCHDROP_BENCH_RTT", "50,150") {
		ms, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			b.Fatalf("PUNCHDROP_BENCH_RTT: %v", err)
		}
		s.rtts = append(s.rtts, time.Duration(ms)*time.Millisecond)
	}
	for _, v := range list("PUNCHDROP_BENCH_LOSS", "0,0.5,2") {
		pct, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			b.Fatalf("PUNCHDROP_BENCH_LOSS: %v", err)
		}
		s.losses = append(s.losses, pct/100)
	}
	keys := map[string]bool{}
	for _, k := range list("PUNCHDROP_BENCH_ROWS", "") {
		if k = strings.TrimSpace(k); k != "" {
			keys[k] = true
		}
	}
	for _, r := range allPathRows {
		if len(keys) == 0 || keys[r.key] {
			s.rows = append(s.rows, r)
		}
	}
	if v := os.Getenv("PUNCHDROP_BENCH_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("PUNCHDROP_BENCH_SIZE: %v", err)
		}
		s.size = n
	}
	if v := os.Getenv("PUNCHDROP_BENCH_CAP"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("PUNCHDROP_BENCH_CAP: %v", err)
		}
		s.cap = d
	}
	return s
}

func cmpOrEnv(name, dflt string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return dflt
}

// pathCase is one emulated path.
type pathCase struct {
	rtt  time.Duration
	loss float64
}

func (c pathCase) name() string {
	return fmt.Sprintf("rtt%dms-loss%g%%", c.rtt.Milliseconds(), 100*c.loss)
}

// shape is what the link does each way on this path.
func (c pathCase) shape() linkem.Shape {
	return linkem.Shape{Delay: c.rtt / 2, Loss: c.loss, Rate: pathRate}
}

// BenchmarkRealPaths prints issue 16's table: every row on every path.
func BenchmarkRealPaths(b *testing.B) {
	s := readPathSettings(b)
	x := newPathLab(b, s)
	type cell struct {
		c pathCase
		r pathRow
		g goodput
	}
	var cells []cell
	for _, rtt := range s.rtts {
		for _, loss := range s.losses {
			c := pathCase{rtt, loss}
			b.Run(c.name(), func(b *testing.B) {
				if err := x.siteA.SetLink(linkem.Config{Up: c.shape(), Down: c.shape()}); err != nil {
					b.Fatal(err)
				}
				for _, r := range s.rows {
					upBefore, _ := x.siteA.LinkStats()
					g := r.run(b, x)
					up, _ := x.siteA.LinkStats()
					lost := float64(up.Lost-upBefore.Lost) / float64(max(1, up.Frames-upBefore.Frames))
					cells = append(cells, cell{c, r, g})
					fmt.Printf("%s %-36s %7.2f MiB/s  %s in %s%s; the link lost %.2f %% of alice's frames\n",
						c.name(), r.name, g.mibps(), fmtBytes(g.bytes), g.took.Round(100*time.Millisecond), cappedNote(g), 100*lost)
				}
			})
		}
	}
	fmt.Printf("\nGoodput alice -> bob, %s per run (capped at %s), 100 Mbit/s each way, random loss each way; TCP congestion control of alice: %s\n",
		fmtBytes(s.size), s.cap, x.tcpCC(b))
	fmt.Printf("%-7s %-6s %-36s %9s %8s %8s\n", "RTT", "loss", "tool", "MiB/s", "of link", "vs croc")
	for _, cl := range cells {
		croc := 0.0
		for _, o := range cells {
			if o.c == cl.c && o.r.key == "croc" {
				croc = o.g.mibps()
			}
		}
		vsCroc := "-"
		if croc > 0 {
			vsCroc = fmt.Sprintf("%.2fx", cl.g.mibps()/croc)
		}
		ofLink := cl.g.mibps() * (1 << 20) * 8 / pathRate
		fmt.Printf("%-7s %-6s %-36s %9.2f %7.0f%% %8s%s\n", fmt.Sprintf("%d ms", cl.c.rtt.Milliseconds()), fmt.Sprintf("%g%%", 100*cl.c.loss),
			cl.r.name, cl.g.mibps(), 100*ofLink, vsCroc, cappedNote(cl.g))
	}
}

func cappedNote(g goodput) string {
	if g.failed != "" {
		return "  (failed: " + g.failed + ")"
	}
	if g.capped {
		return "  (capped)"
	}
	return ""
}

func fmtBytes(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// pathLab is the lab of the path benchmarks and the tools' binaries.
type pathLab struct {
	lab                *lab.Lab
	siteA              *lab.Site // alice's, behind the emulated link
	aliceHost, bobHost *lab.Host
	src                string // the file every tool moves
	size               int64
	cap                time.Duration
	quicperf, crocBin  string
	relay              string // the croc relay's address, once it runs
	ports              int    // numbers the servers' ports
	// top is the whole benchmark's: what outlives one path (the tools'
	// binaries, the croc relay) goes in its temporary folder and ends
	// at its clean-up, not at the end of the path it was first made on.
	top *testing.B
}

func newPathLab(b *testing.B, s pathSettings) *pathLab {
	b.Helper()
	l := lab.New(b)
	siteA, err := l.NewLinkedSite(lab.FullCone)
	if err != nil {
		b.Fatal(err)
	}
	x := &pathLab{lab: l, siteA: siteA, aliceHost: siteA.AddHost(), bobHost: l.AddSite(lab.PortRestricted).AddHost(), size: s.size, cap: s.cap, top: b}
	x.src = randomFile(b, filepath.Join(b.TempDir(), "path.bin"), s.size, 16)
	x.quicperf = buildTool(b, "github.com/punchdrop/punchdrop/lab/quicperf")
	return x
}

// port returns a port no server of this benchmark used before.
func (x *pathLab) port() string {
	x.ports++
	return strconv.Itoa(7100 + x.ports)
}

// tcpCC is the TCP congestion control alice's host sends with.
func (x *pathLab) tcpCC(b *testing.B) string {
	out, err := x.aliceHost.Exec("sysctl", "-n", "net.ipv4.tcp_congestion_control")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(out))
}

// punchdrop starts a fresh pair of agents, alice with the given lanes,
// both with the given congestion control ("" for the default), sends
// the file and waits for it, at most the cap.
func (x *pathLab) punchdrop(b *testing.B, lanes int, congestion string) goodput {
	b.Helper()
	aliceHome, bobHome := b.TempDir(), b.TempDir()
	cc := fmt.Sprintf("congestion = %q\n", congestion)
	writeConfig(b, aliceHome, cc+fmt.Sprintf("lanes = %d", lanes))
	writeConfig(b, bobHome, cc)
	alice := startAgentIn(b, x.lab, x.aliceHost, "alice", aliceHome)
	bob := startAgentIn(b, x.lab, x.bobHost, "bob", bobHome)
	defer func() {
		alice.stop()
		bob.stop()
		os.RemoveAll(bob.downloads()) // a GiB a run
	}()
	connectPair(b, alice, bob)
	waitPeer(b, alice, bob.nodeID(), connectTimeout, "connect", connected)
	start := time.Now()
	alice.mustCLI("send", "bob", x.src)
	name := filepath.Base(x.src)
	for {
		var tr control.TransferInfo
		for _, t := range alice.status() {
			if t.Name == name {
				tr = t
			}
		}
		switch {
		case tr.State == control.TransferFailed:
			b.Fatalf("punchdrop with %d lanes: %s", lanes, tr.Error)
		case tr.State == control.TransferDone:
			return goodput{bytes: x.size, took: queuedToSent(b, alice)}
		case time.Since(start) > x.cap:
			return goodput{bytes: tr.Done, took: time.Since(start), capped: true}
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// quic runs quicperf: alice serves the file's size over conns
// connections, bob receives, for at most the cap. cubic > 0 has alice
// send with CUBIC emulating that many TCP connections.
func (x *pathLab) quic(b *testing.B, conns, window, cubic int) goodput {
	b.Helper()
	port := x.port()
	opts := []string{"-conns", strconv.Itoa(conns), "-window", strconv.Itoa(window), "-cubic", strconv.Itoa(cubic)}
	out := serverThenClient(b,
		x.aliceHost.Command(context.Background(), x.quicperf, append([]string{"-listen", ":" + port, "-bytes", strconv.FormatInt(x.size, 10)}, opts...)...),
		x.bobHost.Command(context.Background(), x.quicperf, append([]string{"-connect", x.siteA.PublicIP().String() + ":" + port, "-time", x.cap.String()}, opts...)...))
	var q struct {
		Bytes   int64
		Seconds float64
		Stopped bool
	}
	if err := json.Unmarshal(out, &q); err != nil {
		b.Fatalf("quicperf output %q: %v", out, err)
	}
	return goodput{bytes: q.Bytes, took: time.Duration(q.Seconds * float64(time.Second)), capped: q.Stopped}
}

// iperf3 runs iperf3 TCP: alice's server sends the file's size (-R),
// bob's client receives, for at most the cap. Its report comes from the
// client's lines, one a second, and its final line.
func (x *pathLab) iperf3(b *testing.B) goodput {
	b.Helper()
	port := x.port()
	server := x.aliceHost.Command(context.Background(), "iperf3", "-s", "-1", "-p", port)
	if err := server.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { server.Process.Kill(); server.Wait() }()
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), x.cap)
	defer cancel()
	client := x.bobHost.Command(ctx, "iperf3", "-c", x.siteA.PublicIP().String(), "-p", port, "-R", "-n", strconv.FormatInt(x.size, 10),
		"-i", "1", "-f", "k", "--forceflush")
	out, err := client.Output()
	seconds, total := iperf3Report(out)
	if total != nil {
		return *total
	}
	if ctx.Err() == nil && err != nil {
		b.Fatalf("iperf3: %v\n%s", err, out)
	}
	g := goodput{capped: true}
	for _, s := range seconds {
		g.bytes += s.bytes
		g.took = s.end
	}
	return g
}

// iperf3Second is one line of an iperf3 client's report: what arrived
// in the interval that ended at end, from the start.
type iperf3Second struct {
	end   time.Duration
	bytes int64
}

// iperf3Report reads an iperf3 client's output (-i 1 -f k): the lines
// of each interval, and its final receiver line (nil when the run was
// cut short).
func iperf3Report(out []byte) (seconds []iperf3Second, total *goodput) {
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(strings.NewReplacer("[", " ", "]", " ", "-", " ").Replace(line))
		// "5 0.00 1.00 sec 11.2 MBytes 94122 Kbits/sec [receiver]"
		if len(f) < 7 || f[3] != "sec" {
			continue
		}
		end, err1 := strconv.ParseFloat(f[2], 64)
		amount, err2 := strconv.ParseFloat(f[4], 64)
		unit := map[string]float64{"Bytes": 1, "KBytes": 1 << 10, "MBytes": 1 << 20, "GBytes": 1 << 30}[f[5]]
		if err1 != nil || err2 != nil || unit == 0 || strings.HasSuffix(line, "sender") {
			continue
		}
		at := time.Duration(end * float64(time.Second))
		if strings.HasSuffix(line, "receiver") {
			return seconds, &goodput{bytes: int64(amount * unit), took: at}
		}
		seconds = append(seconds, iperf3Second{end: at, bytes: int64(amount * unit)})
	}
	return seconds, nil
}

// crocVersion is the croc the issue compares with.
const crocVersion = "github.com/schollz/croc/v10@v10.7.0"

// croc sends the file with croc through its relay on the public side:
// the sender in alice's host, the receiver in bob's once the sender
// gave its code (it hashes the file first), timed from the receiver's
// start to its end, for at most the cap.
func (x *pathLab) croc(b *testing.B) goodput {
	b.Helper()
	x.startRelay(b)
	home := b.TempDir()
	env := append(os.Environ(), "CROC_SECRET=7391-punchdrop-bench-path", "HOME="+home)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sender := x.aliceHost.Command(ctx, x.crocBin, "--relay", x.relay, "--yes", "send", "--no-local", x.src)
	sender.Env = env
	said := waitOutput(b, sender, "Code is")
	defer func() { sender.Process.Kill(); sender.Wait() }()
	select {
	case <-said:
	case <-time.After(2 * time.Minute):
		b.Fatal("croc send gave no code")
	}
	dir := b.TempDir()
	receiver := x.bobHost.Command(ctx, x.crocBin, "--relay", x.relay, "--yes", "--overwrite")
	receiver.Env, receiver.Dir = env, dir
	start := time.Now()
	if err := receiver.Start(); err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- receiver.Wait() }()
	got := filepath.Join(dir, filepath.Base(x.src))
	defer os.Remove(got)
	select {
	case err := <-done:
		took := time.Since(start)
		if fi, serr := os.Stat(got); err != nil || serr != nil || fi.Size() != x.size {
			// croc gave up: a row of the table, not the end of the path.
			return goodput{took: took, failed: fmt.Sprintf("croc receive: %v (%v)", err, serr)}
		}
		return goodput{bytes: x.size, took: took}
	case <-time.After(x.cap):
		fi, _ := os.Stat(got)
		receiver.Process.Kill()
		<-done
		if fi == nil {
			return goodput{took: x.cap, capped: true}
		}
		return goodput{bytes: fi.Size(), took: time.Since(start), capped: true}
	}
}

// startRelay builds croc and runs `croc relay` on the public side, once.
func (x *pathLab) startRelay(b *testing.B) {
	b.Helper()
	if x.relay != "" {
		return
	}
	gobin := x.top.TempDir()
	install := exec.Command("go", "install", crocVersion)
	install.Env = append(os.Environ(), "GOBIN="+gobin)
	if out, err := install.CombinedOutput(); err != nil {
		b.Fatalf("go install %s: %v\n%s", crocVersion, err, out)
	}
	x.crocBin = filepath.Join(gobin, "croc")
	ip := x.lab.InternetIP().String()
	relay := x.lab.Command(context.Background(), x.crocBin, "relay", "--host", ip)
	relay.Env = append(os.Environ(), "HOME="+x.top.TempDir())
	if err := relay.Start(); err != nil {
		b.Fatal(err)
	}
	x.top.Cleanup(func() { relay.Process.Kill(); relay.Wait() })
	time.Sleep(time.Second) // it listens at once; a second covers a busy machine
	x.relay = ip + ":9009"
}

// waitOutput starts cmd and closes the returned channel once its output
// (stdout and stderr, which croc writes without line ends while it
// works) contains want.
func waitOutput(b *testing.B, cmd *exec.Cmd, want string) <-chan struct{} {
	b.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	w.Close()
	said := make(chan struct{})
	go func() {
		defer r.Close()
		br := bufio.NewReader(r)
		var tail []byte // the last len(want) bytes
		for told := false; ; {
			c, err := br.ReadByte()
			if err != nil {
				return
			}
			tail = append(tail, c)
			tail = tail[max(0, len(tail)-len(want)):]
			if !told && string(tail) == want {
				close(said)
				told = true
			}
		}
	}()
	return said
}

// linkedPair is alice behind an emulated link shaped so (full cone) and
// bob behind a port-restricted NAT, connected; aliceConfig is extra
// config for alice.
func linkedPair(b *testing.B, shape linkem.Shape, aliceConfig string) (alice, bob *agentProc) {
	b.Helper()
	l := lab.New(b)
	siteA, err := l.NewLinkedSite(lab.FullCone)
	if err != nil {
		b.Fatal(err)
	}
	if err := siteA.SetLink(linkem.Config{Up: shape, Down: shape}); err != nil {
		b.Fatal(err)
	}
	aliceHome, bobHome := b.TempDir(), b.TempDir()
	writeConfig(b, aliceHome, aliceConfig)
	writeConfig(b, bobHome, "")
	alice = startAgentIn(b, l, siteA.AddHost(), "alice", aliceHome)
	bob = startAgentIn(b, l, l.AddSite(lab.PortRestricted).AddHost(), "bob", bobHome)
	connectPair(b, alice, bob)
	waitPeer(b, alice, bob.nodeID(), connectTimeout, "connect", connected)
	return alice, bob
}

// BenchmarkRealPathsShare shows how much of a shared link punchdrop
// takes from others: one iperf3 TCP flow (CUBIC, the usual default, or
// BBR) runs alone on the emulated 100 Mbit/s link at a round trip of
// 50 ms with no random loss, so every loss is the link's queue
// overflowing; then punchdrop sends beside it, with each of its
// congestion controls. It prints each one's rate while both ran.
func BenchmarkRealPathsShare(b *testing.B) {
	s := readPathSettings(b)
	s.cap = 20 * time.Second
	x := newPathLab(b, s)
	shape := pathCase{rtt: 50 * time.Millisecond}.shape()
	if err := x.siteA.SetLink(linkem.Config{Up: shape, Down: shape}); err != nil {
		b.Fatal(err)
	}
	const alone = 10 * time.Second
	fmt.Printf("\nOne TCP flow and punchdrop (%d lanes) on one 100 Mbit/s link, RTT 50 ms, no random loss (MiB/s)\n", agent.DefaultLanes)
	fmt.Printf("| TCP | punchdrop | TCP alone | TCP beside punchdrop | punchdrop beside TCP | punchdrop's share |\n|---|---|---|---|---|---|\n")
	for _, pair := range [][2]string{{"cubic", "cubic"}, {"cubic", "reno"}, {"bbr", "cubic"}, {"bbr", "reno"}} {
		tcp, cc := pair[0], pair[1]
		port := x.port()
		server := x.aliceHost.Command(context.Background(), "iperf3", "-s", "-1", "-p", port)
		if err := server.Start(); err != nil {
			b.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond)
		client := x.bobHost.Command(context.Background(), "iperf3", "-c", x.siteA.PublicIP().String(), "-p", port, "-R", "-C", tcp,
			"-t", strconv.Itoa(int((alone+s.cap+15*time.Second)/time.Second)), "-i", "1", "-f", "k", "--forceflush")
		var out []byte
		done := make(chan error, 1)
		started := time.Now()
		go func() {
			var err error
			out, err = client.Output()
			done <- err
		}()
		time.Sleep(alone)
		g := x.punchdrop(b, agent.DefaultLanes, cc)
		sendEnd := time.Since(started)
		sendStart := sendEnd - g.took
		if err := <-done; err != nil {
			b.Fatalf("iperf3: %v\n%s", err, out)
		}
		server.Process.Kill()
		server.Wait()
		seconds, _ := iperf3Report(out)
		rate := func(from, to time.Duration) float64 {
			var bytes int64
			var n int
			for _, sec := range seconds {
				if sec.end > from+time.Second && sec.end <= to {
					bytes += sec.bytes
					n++
				}
			}
			return float64(bytes) / (1 << 20) / float64(max(n, 1))
		}
		tcpAlone, tcpShared := rate(2*time.Second, alone), rate(sendStart, sendEnd)
		fmt.Printf("| %s | %s | %.2f | %.2f | %.2f | %.0f %% |\n", tcp, cc, tcpAlone, tcpShared, g.mibps(), 100*g.mibps()/(g.mibps()+tcpShared))
	}
}

// BenchmarkRealPathsSmallFiles sends 1000 files of 4 KiB over the
// 100 Mbit/s link at a round trip of 50 ms (issue 16: at least 300
// files/s).
func BenchmarkRealPathsSmallFiles(b *testing.B) {
	const files = 1000
	alice, bob := linkedPair(b, pathCase{rtt: 50 * time.Millisecond}.shape(), "")
	dir := filepath.Join(b.TempDir(), "small")
	for i := range files {
		randomFile(b, filepath.Join(dir, fmt.Sprintf("f%04d", i)), 4096, uint64(i))
	}
	took := sendWait(b, alice, dir)
	got, _ := os.ReadDir(filepath.Join(bob.downloads(), "small"))
	if len(got) != files {
		b.Fatalf("bob has %d files, want %d", len(got), files)
	}
	rate := files / took.Seconds()
	b.ReportMetric(rate, "files/s")
	fmt.Printf("1000 files of 4 KiB, 100 Mbit/s, RTT 50 ms: %s, %.0f files/s\n", took.Round(time.Millisecond), rate)
}

// BenchmarkRealPathsMemory moves PUNCHDROP_BENCH_SIZE (default 4 GiB)
// over the 100 Mbit/s link at a round trip of 150 ms and reports both
// agents' peak RSS (issue 16: at most 64 MiB).
func BenchmarkRealPathsMemory(b *testing.B) {
	size := int64(4 << 30)
	if v := os.Getenv("PUNCHDROP_BENCH_SIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("PUNCHDROP_BENCH_SIZE: %v", err)
		}
		size = n
	}
	alice, bob := linkedPair(b, pathCase{rtt: 150 * time.Millisecond}.shape(), "")
	src := randomFile(b, filepath.Join(b.TempDir(), "big.bin"), size, 3)
	took := sendWait(b, alice, src)
	sender, receiver := alice.peakRSS(b), bob.peakRSS(b)
	os.Remove(filepath.Join(bob.downloads(), "big.bin"))
	b.ReportMetric(max(sender, receiver), "MiB-peak-RSS")
	fmt.Printf("%s at RTT 150 ms in %s (%.2f MiB/s): peak RSS sender %.1f MiB, receiver %.1f MiB\n",
		fmtBytes(size), took.Round(time.Millisecond), float64(size)/(1<<20)/took.Seconds(), sender, receiver)
}
