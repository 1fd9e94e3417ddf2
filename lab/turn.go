package lab

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// The lab's TURN relay: a coturn in the internet namespace, on an address
// of its own, with credentials. UDP and TCP on TURNPort, TLS on
// TURNTLSPort (443, the port an office firewall leaves open).
const (
	TURNPort    = 3478
	TURNTLSPort = 443
	// TURNUser, TURNPassword are the relay's long-term credentials;
	// TURNSecret is its REST API secret when it runs with one.
	TURNUser     = "punchdrop"
	TURNPassword = "lab-relay-password"
	TURNSecret   = "lab-relay-secret"
	// TURNName is the name in the relay's TLS certificate.
	TURNName  = "relay.lab.test"
	turnRealm = "lab.test"
)

// Where the lab's relays listen and relay from: one with long-term
// credentials, one with a REST secret, so a lab may run both.
var (
	turnAddr     = netip.MustParseAddr("198.18.0.4")
	turnRESTAddr = netip.MustParseAddr("198.18.0.5")
)

// TURN is the lab's TURN relay process.
type TURN struct {
	lab  *Lab
	addr netip.Addr
	rest bool
	dir  string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	done chan struct{}
}

// StartTURN runs the lab's TURN relay: with long-term credentials
// (TURNUser, TURNPassword), or with rest the REST API secret TURNSecret.
// Close stops it; so does the lab's Close.
func (l *Lab) StartTURN(ctx context.Context, rest bool) (*TURN, error) {
	addr := turnAddr
	if rest {
		addr = turnRESTAddr
	}
	if err := ipIn(l.inet, "addr", "replace", prefixed(addr), "dev", "br0"); err != nil {
		return nil, fmt.Errorf("start TURN: %w", err)
	}
	dir, err := os.MkdirTemp("", "punchdrop-turn-")
	if err != nil {
		return nil, fmt.Errorf("start TURN: %w", err)
	}
	t := &TURN{lab: l, addr: addr, rest: rest, dir: dir}
	if err := writeTURNCert(dir, addr); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start TURN: %w", err)
	}
	if err := t.start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	l.pushUndo(t.Close)
	return t, nil
}

// start runs coturn and waits until it takes TCP connections.
func (t *TURN) start(ctx context.Context) error {
	args := []string{
		"-n", "--no-cli", "--no-dtls", "--no-multicast-peers",
		"--listening-ip=" + t.addr.String(), "--relay-ip=" + t.addr.String(),
		"--listening-port=" + strconv.Itoa(TURNPort), "--tls-listening-port=" + strconv.Itoa(TURNTLSPort),
		"--min-port=49152", "--max-port=65535", "--realm=" + turnRealm,
		"--cert=" + filepath.Join(t.dir, "cert.pem"), "--pkey=" + filepath.Join(t.dir, "key.pem"),
		"--log-file=stdout", "--simple-log",
		"--pidfile=" + filepath.Join(t.dir, "turnserver.pid"), "--db=" + filepath.Join(t.dir, "turndb"),
	}
	if t.rest {
		args = append(args, "--use-auth-secret", "--static-auth-secret="+TURNSecret)
	} else {
		args = append(args, "--lt-cred-mech", "--user="+TURNUser+":"+TURNPassword)
	}
	t.log = &bytes.Buffer{}
	t.cmd = commandIn(context.Background(), t.lab.inet, "turnserver", args...)
	t.cmd.Stdout, t.cmd.Stderr = t.log, t.log
	if err := t.cmd.Start(); err != nil {
		return fmt.Errorf("start TURN: %w", err)
	}
	t.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(t.cmd, t.done)
	ctx, cancel := context.WithTimeout(ctx, coturnReadyTimeout)
	defer cancel()
	addr := netip.AddrPortFrom(t.addr, TURNPort).String()
	for {
		err := inNamespace(t.lab.inet, func() error {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			return nil
		}
		select {
		case <-t.done:
			return fmt.Errorf("start TURN: turnserver exited:\n%s", t.log)
		case <-ctx.Done():
			t.stop()
			return fmt.Errorf("start TURN: not listening on %s: %v", addr, err)
		case <-time.After(readyProbeInterval):
		}
	}
}

// stop ends the relay by its PID: a leftover coturn would keep its ports
// (it binds with SO_REUSEPORT).
func (t *TURN) stop() {
	if t.cmd == nil {
		return
	}
	t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(coturnStopTimeout):
		t.cmd.Process.Kill()
		<-t.done
	}
	t.cmd = nil
}

// Kill stops the relay, as a crash or an outage would, until Restart.
func (t *TURN) Kill() { t.stop() }

// Restart starts the relay again after Kill, with the same settings; the
// allocations it held are gone.
func (t *TURN) Restart(ctx context.Context) error {
	t.stop()
	return t.start(ctx)
}

// Close stops the relay and removes its files.
func (t *TURN) Close() error {
	t.stop()
	return os.RemoveAll(t.dir)
}

// URL is a relay URL for this server and transport (udp, tcp or tls),
// with its credentials.
func (t *TURN) URL(transport string) string {
	creds, secret := TURNUser+":"+TURNPassword+"@", ""
	if t.rest {
		creds, secret = TURNUser+"@", "&secret="+TURNSecret
	}
	switch transport {
	case "tls":
		// By address: lab hosts resolve no names. The certificate holds
		// the address too.
		return fmt.Sprintf("turns:%s%s:%d?transport=tcp%s", creds, t.addr, TURNTLSPort, secret)
	case "tcp":
		return fmt.Sprintf("turn:%s%s:%d?transport=tcp%s", creds, t.addr, TURNPort, secret)
	}
	return fmt.Sprintf("turn:%s%s:%d?transport=udp%s", creds, t.addr, TURNPort, secret)
}

// CertFile is the PEM file of the certificate the relay's TLS port
// shows: what a client must trust (SSL_CERT_FILE) for turns: URLs.
func (t *TURN) CertFile() string { return filepath.Join(t.dir, "cert.pem") }

// Addr is the relay's address.
func (t *TURN) Addr() netip.Addr { return t.addr }

// Log is what the relay printed so far.
func (t *TURN) Log() string { return t.log.String() }

// writeTURNCert writes a self-signed certificate for TURNName and addr
// into dir.
func writeTURNCert(dir string, addr netip.Addr) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: TURNName},
		DNSNames: []string{TURNName}, IPAddresses: []net.IP{addr.AsSlice()},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(7 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return errors.Join(
		os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644),
		os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600),
	)
}
