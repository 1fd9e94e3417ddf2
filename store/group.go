package store

import (
	"errors"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Group commit. Concurrent transfers record their state through
// s.batch: an update that comes while a commit is under way waits for
// it, then goes with every other update that came meanwhile in one
// commit (one set of fsyncs); one that comes while none is under way
// commits at once. A group thus grows with the time a commit takes.
//
// bbolt's own DB.Batch cuts a batch after a fixed delay whether or not
// the one before has committed: once a commit takes longer than the
// delay, batches queue for the writer lock one behind another, each a
// commit of its own, and an update waits for the whole queue. With 48
// small files arriving at once (three updates each), updates waited
// 33–40 ms each at the receiver (e2e BenchmarkRealPathsSmallFiles).

// group is the updates waiting for the next commit.
type group struct {
	mu         sync.Mutex // guards following
	calls      []groupCall
	committing bool // a goroutine commits groups until none is left
}

// groupCall is one update in a group, and where its outcome goes.
type groupCall struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// errAlone tells an update that failed in a group to run on its own,
// so that its error is its own and the others commit without it.
var errAlone = errors.New("update alone")

// batch runs fn in a read-write transaction shared with the updates
// that come at about the same time (see above). As with DB.Batch, fn may
// run more than once, so it must do the same each time, and any of the
// group's updates failing fails none of the others.
func (s *Store) batch(fn func(*bolt.Tx) error) error {
	done := make(chan error, 1)
	g := &s.group
	g.mu.Lock()
	g.calls = append(g.calls, groupCall{fn: fn, done: done})
	start := !g.committing
	g.committing = true
	g.mu.Unlock()
	if start {
		go s.commitGroups()
	}
	err := <-done
	if errors.Is(err, errAlone) {
		err = s.db.Update(fn)
	}
	return err
}

// commitGroups commits the updates waiting, a group at a time, until
// none is left.
func (s *Store) commitGroups() {
	g := &s.group
	for {
		g.mu.Lock()
		calls := g.calls
		g.calls = nil
		if len(calls) == 0 {
			g.committing = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		s.commitGroup(calls)
	}
}

// commitGroup commits calls in one transaction. An update that fails is
// told to run alone, and the others go again without it.
func (s *Store) commitGroup(calls []groupCall) {
	for len(calls) > 0 {
		failed := -1
		err := safely(func() error {
			return s.db.Update(func(tx *bolt.Tx) error {
				for i, c := range calls {
					if err := c.fn(tx); err != nil {
						failed = i
						return err
					}
				}
				return nil
			})
		})
		if failed < 0 {
			for _, c := range calls {
				c.done <- err
			}
			return
		}
		calls[failed].done <- errAlone
		calls = slices.Delete(calls, failed, failed+1)
	}
}
