// Package sessiontest holds tools for tests that attack a node on
// loopback: a prober that floods it with signed punch probes, each from a
// key of its own, from many source addresses. Tests only.
package sessiontest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/session/probe"
)

// Sources opens a UDP socket on each of the loopback addresses
// 127.0.0.first to 127.0.0.(first+n-1) (Linux routes all of 127/8 to
// loopback) and closes them when the test ends.
func Sources(t testing.TB, first, n int) []*net.UDPConn {
	t.Helper()
	if first < 1 || first+n > 255 {
		t.Fatalf("sources 127.0.0.%d+%d: out of range", first, n)
	}
	conns := make([]*net.UDPConn, n)
	for i := range conns {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, byte(first+i))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		conns[i] = c
	}
	return conns
}

// Prober sends punch probes to one node.
type Prober struct {
	Target netip.AddrPort // the node's UDP address
	To     [32]byte       // the node's ID
	Name   string         // display name the probes carry
	// Claim, if set, is written as the sender of every flood probe,
	// which is still signed by a fresh key: a forgery in the name of a
	// node whose ID is public, which costs the target a signature check.
	Claim *[32]byte
}

// Request sends one probe request signed by key from c.
func (p Prober) Request(c *net.UDPConn, key ed25519.PrivateKey) error {
	var from [32]byte
	copy(from[:], key.Public().(ed25519.PublicKey))
	return p.send(c, from, key)
}

func (p Prober) send(c *net.UDPConn, from [32]byte, key ed25519.PrivateKey) error {
	pr := probe.Probe{Type: probe.Request, From: from, To: p.To, Nonce: nonce(), Time: time.Now(), Name: p.Name}
	b, err := pr.Marshal(key)
	if err != nil {
		return err
	}
	if _, err := c.WriteToUDPAddrPort(b, p.Target); err != nil {
		return fmt.Errorf("send probe from %s: %w", c.LocalAddr(), err)
	}
	return nil
}

// Flood sends probe requests as fast as it can until ctx ends, each
// signed by a new key, taking the sockets in turn; it returns how many
// it sent.
func (p Prober) Flood(ctx context.Context, conns []*net.UDPConn) int {
	sent := 0
	for i := 0; ctx.Err() == nil; i++ {
		_, key, err := ed25519.GenerateKey(nil)
		if err != nil {
			return sent
		}
		var from [32]byte
		copy(from[:], key.Public().(ed25519.PublicKey))
		if p.Claim != nil {
			from = *p.Claim
		}
		// A full socket buffer drops datagrams, as a real link would.
		if p.send(conns[i%len(conns)], from, key) == nil {
			sent++
		}
	}
	return sent
}

func nonce() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}
