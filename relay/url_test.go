package relay

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in   string
		want Server
		err  string // in the error; empty when it parses
	}{
		{"turn:relay.example.com", Server{Host: "relay.example.com", Port: 3478, Transport: "udp"}, ""},
		{"turn:alice:wonder%40land@relay.example.com:3479", Server{Host: "relay.example.com", Port: 3479, Transport: "udp", Username: "alice", Password: "wonder@land"}, ""},
		{"turn:198.18.0.4?transport=tcp", Server{Host: "198.18.0.4", Port: 3478, Transport: "tcp"}, ""},
		{"TURN:relay.example.com?transport=UDP", Server{Host: "relay.example.com", Port: 3478, Transport: "udp"}, ""},
		{"turns:relay.example.com", Server{Host: "relay.example.com", Port: 5349, Transport: "tls"}, ""},
		{"turns:u:p@relay.example.com:443?transport=tcp", Server{Host: "relay.example.com", Port: 443, Transport: "tls", Username: "u", Password: "p"}, ""},
		{"turn:relay.example.com?secret=s3cret", Server{Host: "relay.example.com", Port: 3478, Transport: "udp", Secret: "s3cret"}, ""},
		{"turn:bob@relay.example.com?transport=tcp&secret=s3cret", Server{Host: "relay.example.com", Port: 3478, Transport: "tcp", Username: "bob", Secret: "s3cret"}, ""},
		{"turn:bob@relay.example.com", Server{}, "no password"},
		{"turn:bob:@relay.example.com?secret=s3cret", Server{Host: "relay.example.com", Port: 3478, Transport: "udp", Username: "bob", Secret: "s3cret"}, ""},
		{"turn:[2001:db8::1]:3478", Server{Host: "2001:db8::1", Port: 3478, Transport: "udp"}, ""},
		{"turn:2001:db8::1", Server{Host: "2001:db8::1", Port: 3478, Transport: "udp"}, ""},
		{"stun:relay.example.com", Server{}, "turn: or turns:"},
		{"relay.example.com:3478", Server{}, "turn: or turns:"},
		{"turn:", Server{}, "no server"},
		{"turn:relay.example.com:0", Server{}, "not a port"},
		{"turn:relay.example.com:99999", Server{}, "not a port"},
		{"turn:relay.example.com:x", Server{}, "not a port"},
		{"turn:relay.example.com?transport=sctp", Server{}, "udp or tcp"},
		{"turns:relay.example.com?transport=udp", Server{}, "runs over TCP"},
		{"turn:relay.example.com?color=blue", Server{}, "unknown parameter"},
		{"turn:a:b@relay.example.com?secret=s", Server{}, "not both"},
		{"turn::secretpass@relay.example.com", Server{}, "USER:PASS"},
		{"turn:u:p@", Server{}, "no server name"},
	}
	for _, tt := range tests {
		got, err := ParseURL(tt.in)
		if tt.err != "" {
			if !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseURL(%q) = %+v, %v; want an error about %q", tt.in, got, err, tt.err)
			}
			if err != nil && strings.Contains(err.Error(), "secretpass") {
				t.Errorf("ParseURL(%q) repeats the password: %v", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// String is for logs: it never shows the password or the secret, and
// says how the server is reached.
func TestServerString(t *testing.T) {
	for in, want := range map[string]string{
		"turn:alice:pw@relay.example.com":               "turn:alice@relay.example.com:3478",
		"turn:relay.example.com?transport=tcp&secret=s": "turn:relay.example.com:3478?transport=tcp",
		"turns:u:p@[2001:db8::1]:443":                   "turns:u@[2001:db8::1]:443",
	} {
		srv, err := ParseURL(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := srv.String(); got != want {
			t.Errorf("%q: String() = %q, want %q", in, got, want)
		}
	}
}

// REST credentials as coturn's use-auth-secret checks them; the
// expected passwords were computed independently (Python's hmac).
func TestRESTCredentials(t *testing.T) {
	now := time.Unix(1700000000, 0)
	for _, tt := range []struct{ user, wantUser, wantPass string }{
		{"", "1700086400:punchdrop", "F9kipIxG6gVgVrEBZX9vxzMrol0="},
		{"alice", "1700086400:alice", "SXua5ne/+mDhiHTp0pQJzRO4ESg="},
	} {
		user, pass := Server{Username: tt.user, Secret: "north"}.credentials(now)
		if user != tt.wantUser || pass != tt.wantPass {
			t.Errorf("credentials for %q = %q, %q; want %q, %q", tt.user, user, pass, tt.wantUser, tt.wantPass)
		}
	}
	if user, pass := (Server{Username: "u", Password: "p"}).credentials(now); user != "u" || pass != "p" {
		t.Errorf("long-term credentials = %q, %q", user, pass)
	}
}
