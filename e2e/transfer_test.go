package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/agent"
	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
	"github.com/punchdrop/punchdrop/testutil"
)

// transferTimeout bounds one wait for transfers in the lab; 200 MiB over
// a shaped link takes seconds.
const transferTimeout = 3 * time.Minute

// transferLab is two agents behind two NATs (full cone and
// port-restricted), connected.
type transferLab struct {
	lab                *lab.Lab
	siteA, siteB       *lab.Site
	alice, bob         *agentProc
	aliceHome, bobHome string
	aliceHost, bobHost *lab.Host
}

// newTransferLab starts alice and bob; bobConfig is extra config for bob.
func newTransferLab(t testing.TB, bobConfig string) *transferLab {
	t.Helper()
	x := &transferLab{lab: lab.New(t)}
	x.siteA, x.siteB = x.lab.AddSite(lab.FullCone), x.lab.AddSite(lab.PortRestricted)
	x.aliceHost, x.bobHost = x.siteA.AddHost(), x.siteB.AddHost()
	x.aliceHome, x.bobHome = t.TempDir(), t.TempDir()
	writeConfig(t, x.aliceHome, "")
	writeConfig(t, x.bobHome, bobConfig)
	x.alice = startAgentIn(t, x.lab, x.aliceHost, "alice", x.aliceHome)
	x.bob = startAgentIn(t, x.lab, x.bobHost, "bob", x.bobHome)
	connectPair(t, x.alice, x.bob)
	waitPeer(t, x.alice, x.bob.nodeID(), connectTimeout, "connect", connected)
	return x
}

func (a *agentProc) client() *control.Client {
	return control.NewClient(agent.ResolvePaths(a.home).Socket)
}

func (a *agentProc) downloads() string { return agent.ResolvePaths(a.home).Downloads }

// killHard ends the agent with SIGKILL: no clean-up of any kind.
func (a *agentProc) killHard() {
	a.cmd.Process.Signal(syscall.SIGKILL)
	<-a.done
}

// randomFile writes size pseudo-random bytes (fast, incompressible) and
// returns the path.
func randomFile(t testing.TB, path string, size int64, seed uint64) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	if _, err := io.CopyN(f, rng, size); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileHash(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// sameFile fails unless got has exactly want's bytes.
func sameFile(t testing.TB, want, got string) {
	t.Helper()
	if _, err := os.Stat(got); err != nil {
		t.Fatalf("not delivered: %v", err)
	}
	if fileHash(t, want) != fileHash(t, got) {
		t.Fatalf("%s differs from the source %s", got, want)
	}
}

// status reads the agent's transfers over its control socket.
func (a *agentProc) status() []control.TransferInfo {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := a.client().Status(ctx)
	if err != nil {
		a.t.Fatalf("status of %s: %v", a.name, err)
	}
	return st.Transfers
}

// waitTransfer polls a's status until cond holds for the transfer with
// the given name.
func waitTransfer(t testing.TB, a *agentProc, name string, what string, cond func(control.TransferInfo) bool) control.TransferInfo {
	t.Helper()
	deadline := time.Now().Add(transferTimeout)
	var last control.TransferInfo
	for time.Now().Before(deadline) {
		for _, tr := range a.status() {
			if tr.Name == name || strings.TrimSuffix(tr.Name, filepath.Ext(tr.Name)) == name {
				last = tr
				if tr.State == control.TransferFailed {
					t.Fatalf("%s: transfer of %s failed: %s", what, name, tr.Error)
				}
				if cond(tr) {
					return tr
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %s's transfer of %s after %s: %+v", what, a.name, name, transferTimeout, last)
	return last
}

func isDone(tr control.TransferInfo) bool { return tr.State == control.TransferDone }

func TestTransferSizesAndFolder(t *testing.T) {
	t.Parallel()
	x := newTransferLab(t, "")
	src := t.TempDir()
	const chunk = 1 << 20
	sizes := map[string]int64{"empty": 0, "one": 1, "chunk-1": chunk - 1, "chunk": chunk, "chunk+1": chunk + 1, "big": 200 << 20}
	var args []string
	for name, size := range sizes {
		args = append(args, randomFile(t, filepath.Join(src, name+".bin"), size, uint64(size)))
	}
	tree := filepath.Join(src, "tree")
	treeFiles := []string{"a.txt", "sub/b.bin", "sub/deeper/c.bin", "other/d.txt"}
	for i, f := range treeFiles {
		randomFile(t, filepath.Join(tree, f), int64(1000*i+3), uint64(i))
	}
	args = append(args, tree)

	out, err := x.alice.cli(append([]string{"send", "--wait", "--json", "bob"}, args...)...)
	if err != nil {
		t.Fatalf("send --wait: %v\n%s", err, out)
	}
	var res control.SendResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Transfers) != len(sizes)+len(treeFiles) {
		t.Fatalf("send --wait --json printed %d transfers, %v:\n%s", len(res.Transfers), err, out)
	}
	for name := range sizes {
		sameFile(t, filepath.Join(src, name+".bin"), filepath.Join(x.bob.downloads(), name+".bin"))
	}
	for _, f := range treeFiles {
		sameFile(t, filepath.Join(tree, f), filepath.Join(x.bob.downloads(), "tree", f))
	}
	if staged, _ := os.ReadDir(filepath.Join(x.bob.downloads(), ".punchdrop")); len(staged) != 0 {
		t.Fatalf("staging files left: %v", staged)
	}
}

// TestTransferSurvivesKill kills the sender, then (separately) the
// receiver with SIGKILL halfway through 200 MiB, restarts it, and expects
// the identical file, with the half that had arrived not sent again.
func TestTransferSurvivesKill(t *testing.T) {
	for _, victim := range []string{"sender", "receiver"} {
		t.Run(victim, func(t *testing.T) {
			t.Parallel()
			x := newTransferLab(t, "")
			// 400 Mbit/s makes 200 MiB take about four seconds: time to
			// catch it halfway.
			if err := x.siteA.SetRate(400); err != nil {
				t.Fatal(err)
			}
			src := randomFile(t, filepath.Join(t.TempDir(), "big.bin"), 200<<20, 7)
			x.alice.mustCLI("send", "bob", src)
			waitTransfer(t, x.alice, "big.bin", "halfway", func(tr control.TransferInfo) bool { return tr.Done >= tr.Size/2 })
			if victim == "sender" {
				x.alice.killHard()
				x.alice = startAgentIn(t, x.lab, x.aliceHost, "alice", x.aliceHome)
			} else {
				// Cut bob's link first, so that the rest of the file
				// cannot arrive however late this runs after "halfway".
				if err := x.siteB.SetLoss(1); err != nil {
					t.Fatal(err)
				}
				x.bob.killHard()
				if _, err := os.Stat(filepath.Join(x.bob.downloads(), "big.bin")); err == nil {
					t.Fatal("a half-received file is under its final name")
				}
				if err := x.siteB.SetLoss(0); err != nil {
					t.Fatal(err)
				}
				x.bob = startAgentIn(t, x.lab, x.bobHost, "bob", x.bobHome)
			}
			waitTransfer(t, x.alice, "big.bin", "after restart", isDone)
			sameFile(t, src, filepath.Join(x.bob.downloads(), "big.bin"))
		})
	}
}

func TestTransferUnderLoss(t *testing.T) {
	t.Parallel()
	x := newTransferLab(t, "")
	if err := x.siteB.SetLoss(0.02); err != nil {
		t.Fatal(err)
	}
	src := randomFile(t, filepath.Join(t.TempDir(), "lossy.bin"), 50<<20, 3)
	// bob watches his transfers meanwhile; outside a terminal that is a
	// line per transfer that ends.
	watch := exec.Command(punchdropBin, "--home", x.bob.home, "status", "--watch")
	var watched testutil.Buffer
	watch.Stdout = &watched
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { watch.Process.Kill(); watch.Wait() }()
	if out, err := x.alice.cli("send", "--wait", "bob", src); err != nil {
		t.Fatalf("send under 2%% loss: %v\n%s", err, out)
	}
	sameFile(t, src, filepath.Join(x.bob.downloads(), "lossy.bin"))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(watched.String(), "done    ← alice  lossy.bin") {
		if time.Now().After(deadline) {
			t.Fatalf("status --watch printed %q", watched.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReceiverDiskFull gives bob a 24 MiB tmpfs for downloads with 16 MiB
// taken, and a 1 MiB free-space reserve (the default, 2 GiB, is more than
// the whole tmpfs): a 16 MiB file is refused with a clear reason on both
// sides, stays queued, and arrives once space is freed.
func TestReceiverDiskFull(t *testing.T) {
	t.Parallel()
	lab.Require(t)
	downloads := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", downloads).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", downloads).Run() })
	filler := randomFile(t, filepath.Join(downloads, "filler.bin"), 16<<20, 1)

	x := newTransferLab(t, fmt.Sprintf("downloads = %q\nmin_free_space = \"1MiB\"\n", downloads))
	src := randomFile(t, filepath.Join(t.TempDir(), "wontfit.bin"), 16<<20, 2)
	x.alice.mustCLI("send", "bob", src)
	// Between retries the transfer is queued with the reason; during one
	// it is sending, with the last reason kept.
	tr := waitTransfer(t, x.alice, "wontfit.bin", "refusal", func(tr control.TransferInfo) bool {
		return tr.State == control.TransferQueued && tr.Error != ""
	})
	if !strings.Contains(tr.Error, "disk space") {
		t.Fatalf("sender shows %+v; want queued with a disk-space reason", tr)
	}
	if _, err := os.Stat(filepath.Join(downloads, "wontfit.bin")); err == nil {
		t.Fatal("a file that did not fit appeared under its final name")
	}
	// Bob logs the refusal once his side of the transfer has ended, which
	// may be just after alice heard of it.
	testutil.WaitFor(t, 5*time.Second, "the receiver's log to say why it refused", func() bool {
		return strings.Contains(string(must(os.ReadFile(filepath.Join(x.bobHome, "punchdrop.log")))), "disk space")
	})
	os.Remove(filler)
	waitTransfer(t, x.alice, "wontfit.bin", "after space was freed", isDone)
	sameFile(t, src, filepath.Join(downloads, "wontfit.bin"))
}

// TestSourceModifiedMidTransfer rewrites the source while it is being
// sent: what arrives is the new version, whole, never a mix.
func TestSourceModifiedMidTransfer(t *testing.T) {
	t.Parallel()
	x := newTransferLab(t, "")
	// At 50 Mbit/s the last three quarters take 8 s: the change below is
	// made long before the old version could be complete.
	if err := x.siteA.SetRate(50); err != nil {
		t.Fatal(err)
	}
	src := randomFile(t, filepath.Join(t.TempDir(), "draft.bin"), 64<<20, 4)
	x.alice.mustCLI("send", "bob", src)
	waitTransfer(t, x.alice, "draft.bin", "a quarter sent", func(tr control.TransferInfo) bool { return tr.Done >= tr.Size/4 })
	f, err := os.OpenFile(src, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("the first bytes changed"), 0) // in a chunk the receiver already holds
	f.Close()
	x.siteA.SetRate(0)
	waitTransfer(t, x.alice, "draft.bin", "delivery", isDone)
	sameFile(t, src, filepath.Join(x.bob.downloads(), "draft.bin"))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestHostileNames offers one file under names a hostile or careless
// sender might use (send --as): each is refused with a clear reason or
// stored under a safe name inside bob's downloads, and nothing appears
// anywhere else.
func TestHostileNames(t *testing.T) {
	t.Parallel()
	x := newTransferLab(t, "")
	src := randomFile(t, filepath.Join(t.TempDir(), "payload.bin"), 1000, 9)
	long := strings.Repeat("a", 300) + ".txt"
	tests := []struct {
		as   string
		want string // stored name; empty means refused
	}{
		{"../escape.txt", ""},
		{"/etc/passwd", ""},
		{"a/../../b.txt", ""},
		{`..\..\win.txt`, ""},
		{`C:\evil.txt`, ""},
		{"bell\x07.txt", "bell_.txt"},
		{"invoice\u202Ehs.pdf", "invoice_hs.pdf"},
		{"CON", "_CON"},
		{"aux.tar.gz", "_aux.tar.gz"},
		{`what?<>|*.txt`, "what_____.txt"},
		{"trailing. ", "trailing"},
		{".punchdrop/x.part", "_.punchdrop/x.part"},
		{long, strings.Repeat("a", 251) + ".txt"},
		{"deep/./er//ok.txt", "deep/er/ok.txt"},
	}
	for _, tt := range tests {
		out, err := x.alice.cli("send", "--wait", "--as", tt.as, "bob", src)
		if tt.want == "" {
			if err == nil || !strings.Contains(out, "unsafe file name") {
				t.Errorf("--as %q: %v, %s; want a refusal naming the unsafe name", tt.as, err, out)
			}
			continue
		}
		if err != nil {
			t.Errorf("--as %q: %v", tt.as, err)
			continue
		}
		sameFile(t, src, filepath.Join(x.bob.downloads(), filepath.FromSlash(tt.want)))
	}
	// bob's home holds what an agent makes there, and nothing escaped.
	entries, _ := os.ReadDir(x.bobHome)
	for _, e := range entries {
		switch e.Name() {
		case "Downloads", "Outbox", "config.toml", "identity.key", "state.db", "control.sock", "punchdrop.log":
		default:
			t.Errorf("unexpected %s in bob's home", e.Name())
		}
	}
}
