package transfer_test

import (
	"testing"

	"github.com/punchdrop/punchdrop/transfer"
	"github.com/punchdrop/punchdrop/transfer/journaltest"
)

// TestMemJournalContract: the journal the Receiver's tests run on keeps
// the contract the state database keeps (store runs the same test).
func TestMemJournalContract(t *testing.T) {
	journaltest.Run(t, func(*testing.T) transfer.Journal { return transfer.NewMemJournal() })
}
