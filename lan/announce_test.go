package lan

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/punchdrop/punchdrop/session"
)

func newNode(t testing.TB) (session.NodeID, ed25519.PrivateKey, PeerKey) {
	t.Helper()
	ident, err := session.NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewPeerKey(ident.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ident.ID, ident.Key, k
}

func addrs(s ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range s {
		out = append(out, netip.MustParseAddrPort(a))
	}
	return out
}

func TestSealOpen(t *testing.T) {
	id, priv, key := newNode(t)
	_, _, other := newNode(t)
	now := time.Now().Truncate(time.Millisecond).UTC()
	var many []string
	for i := range MaxAnnounced + 2 {
		many = append(many, netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 168, 1, byte(i + 1)}), 41641).String())
	}
	tests := []struct {
		name string
		in   []netip.AddrPort
		want []netip.AddrPort
	}{
		{"both families", addrs("192.168.1.20:41641", "[2001:db8::20]:41641"), addrs("192.168.1.20:41641", "[2001:db8::20]:41641")},
		{"none", nil, nil},
		{"unusable ones left out, mapped unmapped", addrs("127.0.0.1:1", "192.168.1.20:0", "[fe80::1%eth0]:41641", "[::ffff:192.168.1.21]:41641"), addrs("192.168.1.21:41641")},
		{"at most MaxAnnounced", addrs(many...), addrs(many[:MaxAnnounced]...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Seal(priv, Announcement{Time: now, Addrs: tc.in})
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != AnnouncementSize {
				t.Fatalf("%d bytes, want %d", len(b), AnnouncementSize)
			}
			got, a, err := Open(b, []PeerKey{other, key})
			if err != nil || got != id || !a.Time.Equal(now) || !slices.Equal(a.Addrs, tc.want) {
				t.Fatalf("Open = %s, %+v, %v; want %v", got.Short(), a, err, tc.want)
			}
		})
	}
}

func TestOpenRefuses(t *testing.T) {
	id, priv, key := newNode(t)
	_, forgerPriv, _ := newNode(t)
	_, _, other := newNode(t)
	good, err := Seal(priv, Announcement{Time: time.Now(), Addrs: addrs("192.168.1.20:41641")})
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(good)
	flipped[40] ^= 1
	version := bytes.Clone(good)
	version[0] = 2
	// A holder of the ID can encrypt, but not sign as the node.
	aead, err := announcementAEAD(id)
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	body := encodeBody(Announcement{Time: time.Now(), Addrs: addrs("192.168.1.66:41641")})
	plain := append(body, ed25519.Sign(forgerPriv, signedBytes(nonce, body))...)
	forged := aead.Seal(append([]byte{formatVersion}, nonce...), nonce, plain, additionalData())
	// A signed body that encodeBody would never make.
	badBody := make([]byte, bodySize)
	binary.BigEndian.PutUint64(badBody, uint64(time.Now().UnixMilli()))
	badBody[8], badBody[9] = 1, 5
	plain = append(badBody, ed25519.Sign(priv, signedBytes(nonce, badBody))...)
	malformed := aead.Seal(append([]byte{formatVersion}, nonce...), nonce, plain, additionalData())
	tests := []struct {
		name  string
		b     []byte
		peers []PeerKey
		want  error
	}{
		{"short", good[:AnnouncementSize-1], []PeerKey{key}, ErrNotAnnouncement},
		{"long", append(bytes.Clone(good), 0), []PeerKey{key}, ErrNotAnnouncement},
		{"other version", version, []PeerKey{key}, ErrNotAnnouncement},
		{"a stranger's", good, []PeerKey{other}, ErrNotPeer},
		{"no peers", good, nil, ErrNotPeer},
		{"changed on the way", flipped, []PeerKey{key}, ErrNotPeer},
		{"forged by a holder of the ID", forged, []PeerKey{key}, ErrBadAnnouncement},
		{"malformed body", malformed, []PeerKey{key}, ErrBadAnnouncement},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := Open(tc.b, tc.peers); !errors.Is(err, tc.want) {
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
		})
	}
}

// An announcement holds no form of the node ID or of its addresses, and
// two announcements of the same addresses share nothing but the version
// byte.
func TestAnnouncementRevealsNothing(t *testing.T) {
	id, priv, _ := newNode(t)
	listed := addrs("192.168.1.20:41641", "10.0.0.7:41641")
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(id[:])
	secrets := map[string][]byte{
		"ID": id[:], "ID base32": []byte(b32), "ID base32 lower": []byte(strings.ToLower(b32)),
		"ID hex": []byte(hex.EncodeToString(id[:])), "ID base64": []byte(base64.RawStdEncoding.EncodeToString(id[:])),
		"ID first 8 bytes": id[:8],
	}
	for _, a := range listed {
		secrets[a.String()+" raw"] = a.Addr().AsSlice()
		secrets[a.String()+" raw with port"] = binary.BigEndian.AppendUint16(a.Addr().AsSlice(), a.Port())
		secrets[a.String()+" text"] = []byte(a.Addr().String())
	}
	var sent [][]byte
	for range 2 {
		b, err := Seal(priv, Announcement{Time: time.Now(), Addrs: listed})
		if err != nil {
			t.Fatal(err)
		}
		for what, s := range secrets {
			if bytes.Contains(b, s) {
				t.Errorf("the announcement holds the %s", what)
			}
		}
		sent = append(sent, b)
	}
	const window = 4
	for i := 1; i+window <= AnnouncementSize; i++ {
		if bytes.Contains(sent[1], sent[0][i:i+window]) {
			t.Fatalf("two announcements share the bytes at %d: %x", i, sent[0][i:i+window])
		}
	}
}

func FuzzOpen(f *testing.F) {
	ident, err := session.NewIdentity()
	if err != nil {
		f.Fatal(err)
	}
	key, err := NewPeerKey(ident.ID)
	if err != nil {
		f.Fatal(err)
	}
	b, err := Seal(ident.Key, Announcement{Time: time.Now(), Addrs: addrs("192.168.1.20:41641")})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:10])
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= bodySize {
			// What a signed body may hold, past the cryptography.
			if a, err := decodeBody(b[:bodySize]); err == nil && len(a.Addrs) > MaxAnnounced {
				t.Fatalf("decoded %d addresses", len(a.Addrs))
			}
		}
		_, a, err := Open(b, []PeerKey{key})
		if err != nil {
			return
		}
		if len(b) != AnnouncementSize || len(a.Addrs) > MaxAnnounced {
			t.Fatalf("accepted %d addresses from %d bytes", len(a.Addrs), len(b))
		}
		for _, ap := range a.Addrs {
			if !usable(ap) {
				t.Fatalf("accepted %s", ap)
			}
		}
	})
}
