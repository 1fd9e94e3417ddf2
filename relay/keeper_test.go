package relay

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/testutil"
)

// runKeeper runs a keeper of an allocation on url until the test ends,
// and returns it with the allocations (and nils) it reports.
func runKeeper(t *testing.T, url string, opts Options) (*Keeper, chan *Allocation) {
	t.Helper()
	srv, err := ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *Allocation, 8)
	k := NewKeeper(srv, opts, func(a *Allocation) { got <- a })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { k.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return k, got
}

// next waits for the keeper's next report.
func next(t *testing.T, got chan *Allocation, within time.Duration) *Allocation {
	t.Helper()
	select {
	case a := <-got:
		return a
	case <-time.After(within):
		t.Fatalf("no report from the keeper within %s", within)
		return nil
	}
}

// A keeper makes an allocation, notices when a server restart lost it,
// reports the loss, and makes a new one once the server is back.
func TestKeeperReallocates(t *testing.T) {
	s := startTURN(t, false)
	for _, transport := range []string{TransportUDP, TransportTCP} {
		t.Run(transport, func(t *testing.T) {
			k, got := runKeeper(t, s.url(transport), s.options())
			first := next(t, got, allocateTimeout)
			if first == nil || k.State().Relayed != first.Relayed || k.State().Err != nil {
				t.Fatalf("first report %v, state %+v", first, k.State())
			}
			s.stop()
			start := time.Now()
			if transport == TransportUDP {
				k.Recheck() // over TCP, the closed connection tells at once
			}
			if a := next(t, got, 2*checkTimeout); a != nil {
				t.Fatalf("reported %s, want the loss", a.Relayed)
			}
			if k.State().Err == nil || k.State().Relayed.IsValid() {
				t.Fatalf("state after the loss: %+v", k.State())
			}
			s.start()
			second := next(t, got, maxKeepRetry+allocateTimeout)
			if second == nil || !second.Relayed.IsValid() || k.State().Relayed != second.Relayed {
				t.Fatalf("after the restart: %v, state %+v", second, k.State())
			}
			if err := second.Check(t.Context()); err != nil {
				t.Fatalf("the new allocation: %v", err)
			}
			t.Logf("lost %s, then held %s %s after the server stopped", first.Relayed, second.Relayed, time.Since(start).Round(time.Millisecond))
		})
	}
}

// A keeper whose credentials are refused says so in its state, at once,
// and reports no allocation.
func TestKeeperSaysWhy(t *testing.T) {
	s := startTURN(t, false)
	k, got := runKeeper(t, strings.Replace(s.url(TransportTCP), testPass, "guessed", 1), s.options())
	testutil.WaitFor(t, 5*time.Second, "the keeper's verdict", func() bool { return k.State().Err != nil })
	if err := k.State().Err; !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "guessed") {
		t.Fatalf("state error %v, want ErrUnauthorized without the password", err)
	}
	select {
	case a := <-got:
		t.Fatalf("reported %v", a)
	default:
	}
}

// A server that drops every allocation as soon as it is made (here: a
// proxy in front of coturn that cuts each TCP connection 200 ms after
// it opens) is asked again with back-off, not in a tight loop.
func TestKeeperBacksOffFromDroppedAllocations(t *testing.T) {
	s := startTURN(t, false)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp4", "127.0.0.1:"+strconv.Itoa(s.port))
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, c)
				go io.Copy(c, up)
				time.Sleep(200 * time.Millisecond)
			}()
		}
	}()
	url := strings.Replace(s.url(TransportTCP), ":"+strconv.Itoa(s.port), ":"+strconv.Itoa(ln.Addr().(*net.TCPAddr).Port), 1)
	_, got := runKeeper(t, url, s.options())
	if a := next(t, got, allocateTimeout); a == nil {
		t.Fatal("no first allocation")
	}
	go func() { // the reports are not the point here
		for range got {
		}
	}()
	time.Sleep(5 * time.Second)
	// Back-off 1, 2, 4 s: at most four connections in 5 s (one a
	// quarter second before).
	if n := conns.Load(); n > 4 {
		t.Fatalf("%d allocations in 5 s from a server that drops each at once", n)
	}
	t.Logf("%d connections in 5 s", conns.Load())
}
