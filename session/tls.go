package session

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// ALPN names the punchdrop protocol inside TLS; a version bump here makes
// old and new nodes refuse each other cleanly instead of misreading frames.
const ALPN = "punchdrop/1"

// certLifetime is long because nothing checks it: the key, not the
// certificate, is the identity, and a new certificate is made at every start.
const certLifetime = 10 * 365 * 24 * time.Hour

// ErrUnknownKey is returned by the TLS handshake when the peer presents a key
// that is not the expected node or not a configured peer.
var ErrUnknownKey = errors.New("peer key is not a known node")

// selfSignedCert wraps the node key in a throwaway self-signed certificate,
// the container TLS needs to prove possession of the key.
func selfSignedCert(ident Identity) (tls.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	tmpl.Subject.CommonName = ident.ID.String()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ident.Key.Public(), ident.Key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("create certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: ident.Key}, nil
}

// peerIDFromCerts returns the node ID of the key in the peer's leaf certificate.
func peerIDFromCerts(rawCerts [][]byte) (NodeID, error) {
	if len(rawCerts) == 0 {
		return NodeID{}, fmt.Errorf("%w: no certificate", ErrUnknownKey)
	}
	cert, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return NodeID{}, fmt.Errorf("parse peer certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return NodeID{}, fmt.Errorf("%w: not an Ed25519 key", ErrUnknownKey)
	}
	return NodeIDFromKey(pub)
}

// serverTLS accepts clients whose key satisfies allowed and requires a
// client certificate. TLS itself proves the client holds the key.
func serverTLS(cert tls.Certificate, allowed func(NodeID) bool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAnyClientCert,
		NextProtos:   []string{ALPN},
		// The chain is self-signed by design; VerifyPeerCertificate checks
		// the key against the peers we know instead.
		InsecureSkipVerify: true,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, err := peerIDFromCerts(raw)
			if err != nil {
				return err
			}
			if !allowed(id) {
				return fmt.Errorf("%w: %s", ErrUnknownKey, id.Short())
			}
			return nil
		},
	}
}

// clientTLS dials one expected node and refuses any other key.
func clientTLS(cert tls.Certificate, expected NodeID) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		NextProtos:         []string{ALPN},
		ServerName:         "punchdrop",
		InsecureSkipVerify: true, // see serverTLS
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			id, err := peerIDFromCerts(raw)
			if err != nil {
				return err
			}
			if id != expected {
				return fmt.Errorf("%w: got %s, want %s", ErrUnknownKey, id.Short(), expected.Short())
			}
			return nil
		},
	}
}
