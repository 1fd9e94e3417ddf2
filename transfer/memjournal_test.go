package transfer

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// memJournal is a Journal in memory: the Receiver's tests run on it, and
// journaltest checks that it keeps the contract the state database keeps.
type memJournal struct {
	mu      sync.Mutex // guards following
	records map[string]*memRecord
}

type memRecord struct {
	rec    Record
	chunks map[uint32][]byte // nil once Received
}

// NewMemJournal returns an empty in-memory Journal (exported for the
// contract test, which runs outside this package).
func NewMemJournal() Journal { return newMemJournal() }

func newMemJournal() *memJournal { return &memJournal{records: map[string]*memRecord{}} }

func memKey(peer, id string) string { return peer + "/" + id }

func (j *memJournal) lookup(peer, id string) (*memRecord, error) {
	m := j.records[memKey(peer, id)]
	if m == nil {
		return nil, fmt.Errorf("incoming %s from %s: %w", id, peer, ErrNoRecord)
	}
	return m, nil
}

func (j *memJournal) IncomingTransfer(peer, id string) (Record, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	m, err := j.lookup(peer, id)
	if err != nil {
		return Record{}, err
	}
	return m.rec, nil
}

func (j *memJournal) StartIncoming(rec Record) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	m := &memRecord{rec: rec}
	if rec.State != Received {
		m.chunks = map[uint32][]byte{}
	}
	j.records[memKey(rec.Peer, rec.ID)] = m
	return nil
}

func (j *memJournal) RecordChunks(peer, id string, indexes []uint32, hashes [][]byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	m, err := j.lookup(peer, id)
	if err != nil {
		return err
	}
	if m.chunks == nil {
		return fmt.Errorf("record chunks of %s: received already", id)
	}
	for i, index := range indexes {
		m.chunks[index] = slices.Clone(hashes[i])
	}
	m.rec.Updated = time.Now()
	return nil
}

func (j *memJournal) IncomingChunks(peer, id string, fn func(index uint32, hash []byte) error) error {
	j.mu.Lock()
	m, err := j.lookup(peer, id)
	var chunks map[uint32][]byte
	if err == nil {
		chunks = maps.Clone(m.chunks)
	}
	j.mu.Unlock()
	if err != nil {
		return err
	}
	for _, i := range slices.Sorted(maps.Keys(chunks)) {
		if err := fn(i, chunks[i]); err != nil {
			return err
		}
	}
	return nil
}

func (j *memJournal) FinishIncoming(peer, id, final string, at time.Time) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	m, err := j.lookup(peer, id)
	if err != nil {
		return err
	}
	m.rec.State, m.rec.Final, m.rec.Updated = Received, final, at
	m.chunks = nil
	return nil
}

func (j *memJournal) DeleteIncoming(peer, id string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.records, memKey(peer, id))
	return nil
}

func (j *memJournal) UnfinishedIncoming(peer string) ([]Record, error) {
	var out []Record
	for _, rec := range j.all() {
		if rec.State != Received && (peer == "" || rec.Peer == peer) {
			out = append(out, rec)
		}
	}
	slices.SortStableFunc(out, func(a, b Record) int { return a.Updated.Compare(b.Updated) })
	return out, nil
}

func (j *memJournal) IncomingUsage(peer string) (Usage, error) {
	var u Usage
	for _, rec := range j.all() {
		if rec.Peer == peer {
			u.Count(rec, +1)
		}
	}
	return u, nil
}

// all returns every record, ordered by peer and ID.
func (j *memJournal) all() []Record {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := make([]Record, 0, len(j.records))
	for _, m := range j.records {
		out = append(out, m.rec)
	}
	slices.SortFunc(out, func(a, b Record) int { return cmp.Or(cmp.Compare(a.Peer, b.Peer), cmp.Compare(a.ID, b.ID)) })
	return out
}
