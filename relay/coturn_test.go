package relay

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/testutil"
)

// Test credentials of the loopback TURN servers.
const (
	testUser   = "alice"
	testPass   = "wonderland"
	testSecret = "north-wind"
	testRealm  = "punchdrop.test"
	testHost   = "relay.test" // the name in the TLS certificate
)

// testTURN is a coturn process on loopback, started by a test and
// stopped by its PID when the test ends.
type testTURN struct {
	t       testing.TB
	port    int // UDP and TCP
	tlsPort int
	args    []string
	dir     string
	roots   *x509.CertPool // trusts the server's certificate
	mu      sync.Mutex     // guards following
	cmd     *exec.Cmd
	log     *testutil.Buffer
	done    chan struct{}
}

// startTURN runs coturn on 127.0.0.1 with long-term credentials
// (testUser, testPass) or, with rest, the REST API's shared secret. It
// fails the test under CI=true when coturn is missing, and skips it
// otherwise.
func startTURN(t testing.TB, rest bool) *testTURN {
	t.Helper()
	if _, err := exec.LookPath("turnserver"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true but turnserver (apt: coturn) is missing")
		}
		t.Skip("turnserver (apt: coturn) is missing")
	}
	dir := t.TempDir()
	s := &testTURN{t: t, port: freePort(t), tlsPort: freePort(t), dir: dir}
	s.roots = writeCert(t, dir)
	relayPorts := 20000 + mrand.IntN(20000)
	s.args = []string{
		"-n", "--no-cli", "--no-dtls", "--no-multicast-peers",
		"--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", "--allow-loopback-peers",
		"--listening-port=" + strconv.Itoa(s.port), "--tls-listening-port=" + strconv.Itoa(s.tlsPort),
		"--min-port=" + strconv.Itoa(relayPorts), "--max-port=" + strconv.Itoa(relayPorts+200),
		"--realm=" + testRealm,
		"--cert=" + filepath.Join(dir, "cert.pem"), "--pkey=" + filepath.Join(dir, "key.pem"),
		"--log-file=stdout", "--simple-log",
		"--pidfile=" + filepath.Join(dir, "turnserver.pid"), "--db=" + filepath.Join(dir, "turndb"),
	}
	if rest {
		s.args = append(s.args, "--use-auth-secret", "--static-auth-secret="+testSecret)
	} else {
		s.args = append(s.args, "--lt-cred-mech", "--user="+testUser+":"+testPass)
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// start runs the server and waits until it takes TCP connections.
func (s *testTURN) start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = &testutil.Buffer{}
	s.cmd = exec.Command("turnserver", s.args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	s.done = done
	go func() { s.cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			s.t.Fatalf("turnserver exited:\n%s", s.log)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("turnserver did not listen: %v\n%s", err, s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the server by its PID.
func (s *testTURN) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(3 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
}

// url is the relay URL of this server for a transport, with the right
// credentials.
func (s *testTURN) url(transport string) string {
	creds := testUser + ":" + testPass + "@"
	query := ""
	if s.rest() {
		creds, query = testUser+"@", "&secret="+testSecret
	}
	switch transport {
	case TransportTLS:
		return "turns:" + creds + "127.0.0.1:" + strconv.Itoa(s.tlsPort) + "?transport=tcp" + query
	case TransportTCP:
		return "turn:" + creds + "127.0.0.1:" + strconv.Itoa(s.port) + "?transport=tcp" + query
	}
	return "turn:" + creds + "127.0.0.1:" + strconv.Itoa(s.port) + "?transport=udp" + query
}

func (s *testTURN) rest() bool {
	for _, a := range s.args {
		if a == "--use-auth-secret" {
			return true
		}
	}
	return false
}

// options trust the server's self-signed certificate (for 127.0.0.1).
func (s *testTURN) options() Options {
	return Options{TLSConfig: &tls.Config{RootCAs: s.roots}}
}

// freePort finds a port free for both UDP and TCP on loopback.
func freePort(t testing.TB) int {
	t.Helper()
	for range 100 {
		u, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(port))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// writeCert writes a self-signed certificate for testHost and 127.0.0.1
// into dir and returns a pool that trusts it.
func writeCert(t testing.TB, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: testHost},
		DNSNames: []string{testHost}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}
