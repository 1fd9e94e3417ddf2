package control

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// clientEnv, when set, makes the test binary a client of the socket it
// names, run as another user by TestRefusesAgentOfAnotherUser.
const clientEnv = "PUNCHDROP_TEST_CONTROL_CLIENT"

func TestMain(m *testing.M) {
	if socket := os.Getenv(clientEnv); socket != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := NewClient(socket).ID(ctx)
		fmt.Println("client:", err)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A client talks only to an agent of its own user: someone else's socket
// in its place would read every request and answer what it likes.
func TestRefusesAgentOfAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test runs a client as another user, which needs root; CI runs as root")
		}
		t.Skip("needs root to run a client as another user")
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755) // the test's temporary folders, for the other user
	os.Chmod(dir, 0o777)
	socket := filepath.Join(dir, "control.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(socket, 0o666)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"node_id":"X"}`)) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	// Our own user's client (root) is served.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if id, err := NewClient(socket).ID(ctx); err != nil || id.NodeID != "X" {
		t.Fatalf("own client: %+v, %v", id, err)
	}
	// A client of another user refuses the agent, which runs as root.
	// The test binary sits in a folder only root may enter: copy it out.
	bin := filepath.Join(dir, "client")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), clientEnv+"="+socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as another user: %v: %s", err, out)
	}
	if !strings.Contains(string(out), "runs as another user (uid 0") {
		t.Fatalf("client as another user said %q, want a refusal", out)
	}
}
