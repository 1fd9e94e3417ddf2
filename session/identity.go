package session

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// keyFileMode keeps the private key readable by its owner only.
const keyFileMode = 0o600

// keyPEMType labels the PEM block that holds the Ed25519 seed.
const keyPEMType = "PUNCHDROP ED25519 PRIVATE KEY"

// Identity is a node's key pair and the ID derived from it.
type Identity struct {
	Key ed25519.PrivateKey
	ID  NodeID
}

// NewIdentity makes a fresh random identity.
func NewIdentity() (Identity, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Identity{}, fmt.Errorf("generate key: %w", err)
	}
	return identityFromKey(priv)
}

func identityFromKey(priv ed25519.PrivateKey) (Identity, error) {
	id, err := NodeIDFromKey(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return Identity{}, err
	}
	return Identity{Key: priv, ID: id}, nil
}

// LoadOrCreateIdentity reads the key at path, or creates one there (mode
// 0600, written to a temporary file and renamed, so a crash never leaves a
// half-written key) when none exists yet.
func LoadOrCreateIdentity(path string) (Identity, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return parseIdentity(path, b)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Identity{}, fmt.Errorf("read identity: %w", err)
	}
	ident, err := NewIdentity()
	if err != nil {
		return Identity{}, err
	}
	if err := writeIdentity(path, ident); err != nil {
		return Identity{}, err
	}
	// Read back what is on disk: another process may have won the race.
	if b, err = os.ReadFile(path); err != nil {
		return Identity{}, fmt.Errorf("read identity: %w", err)
	}
	return parseIdentity(path, b)
}

func parseIdentity(path string, b []byte) (Identity, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != keyPEMType || len(block.Bytes) != ed25519.SeedSize {
		return Identity{}, fmt.Errorf("read identity %s: not a punchdrop key file", path)
	}
	return identityFromKey(ed25519.NewKeyFromSeed(block.Bytes))
}

func writeIdentity(path string, ident Identity) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create identity dir: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: keyPEMType, Bytes: ident.Key.Seed()})
	tmp, err := os.CreateTemp(filepath.Dir(path), ".identity-*")
	if err != nil {
		return fmt.Errorf("create identity: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(keyFileMode); err != nil {
		tmp.Close()
		return fmt.Errorf("create identity: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write identity: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write identity: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write identity: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		// Link, unlike Rename, refuses to replace a key another process
		// created meanwhile; read theirs instead of clobbering it.
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return fmt.Errorf("save identity: %w", err)
	}
	return nil
}
