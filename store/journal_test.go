package store

import (
	"testing"

	"github.com/punchdrop/punchdrop/transfer"
	"github.com/punchdrop/punchdrop/transfer/journaltest"
)

// TestJournalContract: the state database keeps the journal contract the
// Receiver relies on, as the in-memory journal of its tests does.
func TestJournalContract(t *testing.T) {
	journaltest.Run(t, func(t *testing.T) transfer.Journal {
		s, _ := openTemp(t)
		return s
	})
}
