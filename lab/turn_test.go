package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/relay"
)

// The lab's relay hands out allocations to a host behind a symmetric NAT
// over every transport, and to a host whose router drops all UDP over TCP
// and TLS only; REST credentials work too.
func TestLabTURN(t *testing.T) {
	l := New(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	turn, err := l.StartTURN(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(turn.CertFile())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	opts := relay.Options{TLSConfig: &tls.Config{RootCAs: roots}}
	allocate := func(h *Host, url string) (*relay.Allocation, error) {
		srv, err := relay.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		var a *relay.Allocation
		err = h.Do(func() (err error) {
			a, err = relay.Allocate(ctx, srv, opts)
			return err
		})
		return a, err
	}
	symmetric := l.AddSite(Symmetric).AddHost()
	for _, transport := range []string{"udp", "tcp", "tls"} {
		a, err := allocate(symmetric, turn.URL(transport))
		if err != nil {
			t.Fatalf("behind a symmetric NAT, over %s: %v", transport, err)
		}
		if a.Relayed.Addr() != turn.Addr() {
			t.Errorf("relayed address %s, want one on %s", a.Relayed, turn.Addr())
		}
		a.Close()
	}
	blocked := l.AddSite(PortRestricted)
	noUDP := blocked.AddHost()
	if err := blocked.BlockUDP(true); err != nil {
		t.Fatal(err)
	}
	if _, err := allocate(noUDP, turn.URL("udp")); err == nil {
		t.Fatal("an allocation over UDP got through a router that drops UDP")
	}
	for _, transport := range []string{"tcp", "tls"} {
		a, err := allocate(noUDP, turn.URL(transport))
		if err != nil {
			t.Fatalf("UDP blocked, over %s: %v", transport, err)
		}
		a.Close()
	}
	// The relay killed and back: a new allocation works.
	turn.Kill()
	if _, err := allocate(symmetric, turn.URL("tcp")); err == nil {
		t.Fatal("allocated on a killed relay")
	}
	if err := turn.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if a, err := allocate(symmetric, turn.URL("tcp")); err != nil {
		t.Fatalf("after restart: %v", err)
	} else {
		a.Close()
	}
	// A relay with a REST secret beside it, and a wrong password.
	rest, err := l.StartTURN(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := allocate(symmetric, rest.URL("udp")); err != nil || a.Relayed.Addr() != rest.Addr() {
		t.Fatalf("REST credentials: %v, %v", a, err)
	} else {
		a.Close()
	}
	wrong := "turn:" + TURNUser + ":nope@" + turn.Addr().String() + "?transport=tcp"
	if _, err := allocate(symmetric, wrong); !errors.Is(err, relay.ErrUnauthorized) {
		t.Fatalf("wrong password: %v", err)
	}
}
