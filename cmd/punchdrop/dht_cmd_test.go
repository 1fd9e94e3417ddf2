package main

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/dht"
	"github.com/punchdrop/punchdrop/testutil"
)

// TestDHTNodeCommand runs dht-node on loopback until its context ends.
func TestDHTNodeCommand(t *testing.T) {
	var stderr testutil.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	root := newRoot()
	root.SetArgs([]string{"dht-node", "--listen", "127.0.0.1:0", "--stats", "0"})
	root.SetErr(&stderr)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "dht node started") {
		if time.Now().After(deadline) {
			t.Fatalf("no start message; stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dht-node did not stop when its context ended")
	}
	for _, want := range []string{"addr=127.0.0.1:", "dht node stopping"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestDHTNodeNeedsListen(t *testing.T) {
	root := newRoot()
	root.SetArgs([]string{"dht-node"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--listen ADDR") {
		t.Errorf("dht-node without --listen: %v", err)
	}
}

func TestExpandBootstrap(t *testing.T) {
	got := expandBootstrap([]string{"192.0.2.10:6881", mainlineBootstrap})
	want := append([]string{"192.0.2.10:6881"}, dht.DefaultBootstrap()...)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("expandBootstrap = %v, want %v", got, want)
	}
	if got := expandBootstrap(nil); len(got) != 0 {
		t.Errorf("expandBootstrap(nil) = %v", got)
	}
}
