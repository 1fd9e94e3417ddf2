package session

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"
)

func TestIdentityIsCreatedPrivateAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "identity.key")
	first, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("key file mode %o, want 600", perm)
	}
	again, err := LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || !again.Key.Equal(first.Key) {
		t.Fatal("a second start made a new identity")
	}
	if got, _ := NodeIDFromKey(first.Key.Public().(ed25519.PublicKey)); got != first.ID {
		t.Fatal("node ID is not derived from the public key")
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func TestIdentityRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.key")
	os.WriteFile(path, []byte("not a key"), 0o600)
	if _, err := LoadOrCreateIdentity(path); err == nil {
		t.Fatal("garbage key file accepted")
	}
}
