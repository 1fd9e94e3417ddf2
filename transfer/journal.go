package transfer

import (
	"errors"
	"time"
)

// Journal is what a Receiver remembers of incoming transfers across
// restarts: a Record per transfer, and the hash of each chunk it holds
// durably. Every method is one all-or-nothing step, safe to call from
// many goroutines at once.
//
// The agent's state database implements it. Package store imports this
// package for these types, and never the reverse: the protocol says what
// a resume needs, the database only keeps it. So no protocol package
// opens the database, and the Receiver is tested against an in-memory
// Journal (journaltest checks that both keep the same contract).
type Journal interface {
	// IncomingTransfer returns the record of peer's transfer id, or an
	// error wrapping ErrNoRecord.
	IncomingTransfer(peer, id string) (Record, error)
	// StartIncoming records a new transfer, replacing any record of the
	// same peer and ID together with its chunks.
	StartIncoming(rec Record) error
	// RecordChunks marks chunks of an unfinished transfer as held, with
	// their hashes, and sets its Updated to now. Call it only once their
	// data is durable.
	RecordChunks(peer, id string, indexes []uint32, hashes [][]byte) error
	// IncomingChunks calls fn for each chunk recorded, in index order,
	// and stops at fn's first error, which it returns.
	IncomingChunks(peer, id string, fn func(index uint32, hash []byte) error) error
	// FinishIncoming marks a transfer Received under final (its name in
	// downloads) at time at, and forgets its chunks: a finished record
	// only answers a sender that missed our END_ACK.
	FinishIncoming(peer, id, final string, at time.Time) error
	// DeleteIncoming forgets a transfer and its chunks; forgetting one
	// that is not there is no error.
	DeleteIncoming(peer, id string) error
	// UnfinishedIncoming returns the transfers not Received, least
	// recently updated first: peer's, or every peer's when peer is "".
	UnfinishedIncoming(peer string) ([]Record, error)
	// IncomingUsage returns what peer holds in incoming transfers. It
	// costs the same however many records the peer has: admission asks
	// for it on every offer.
	IncomingUsage(peer string) (Usage, error)
}

// ErrNoRecord is returned (wrapped) by a Journal asked about a transfer
// it holds no record of.
var ErrNoRecord = errors.New("no record of that transfer")

// RecordState is how far an incoming transfer got.
type RecordState string

// Record states.
const (
	// Receiving: chunks arrive, or the transfer waits for its sender to
	// offer it again.
	Receiving RecordState = "receiving"
	// Received: committed into downloads under Record.Final.
	Received RecordState = "done"
)

// Record is what a Journal keeps of one incoming transfer.
type Record struct {
	ID        string // transfer ID, hex, as its sender chose it
	Peer      string // the sender's node ID
	Name      string // safe relative name it will get
	Size      int64
	ChunkSize int
	ModTime   time.Time
	Mode      uint32
	Staging   string // the staging file, relative to the downloads folder
	State     RecordState
	Final     string // relative name in downloads once Received
	Started   time.Time
	Updated   time.Time // when a chunk was last recorded, or it was Received
}

// Usage sums up what one peer holds in incoming transfers: what
// admission weighs a new offer against.
type Usage struct {
	Unfinished int   // transfers not Received
	Staged     int64 // their sizes added up: each reserves its whole size
	Done       int   // Received transfers remembered
}

// Count adds rec to the usage (sign +1) or takes it out (sign -1).
func (u *Usage) Count(rec Record, sign int) {
	if rec.State == Received {
		u.Done += sign
		return
	}
	u.Unfinished += sign
	u.Staged += int64(sign) * rec.Size
}
