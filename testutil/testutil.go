// Package testutil holds what the tests of several packages share: a
// buffer a test reads while something else writes to it, and waiting
// for a condition. Only tests import it.
package testutil

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

// pollInterval is how often a wait looks at its condition: quick next to
// what tests wait for (network round trips, process starts), slow enough
// to cost nothing.
const pollInterval = 5 * time.Millisecond

// Buffer is a bytes.Buffer that one goroutine (a process's output, a
// logger) may write while a test reads it from another.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// WaitFor waits until cond holds, and fails the test if it does not
// within timeout; what names the condition in the failure.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	Until(t, ctx, what, cond)
}

// Until waits until cond holds, and fails the test if ctx ends first.
func Until(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("gave up waiting for %s: %v", what, context.Cause(ctx))
		case <-tick.C:
		}
	}
}
