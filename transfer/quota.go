package transfer

import (
	"sync"
	"time"
)

// What peers may take of a receiving node. Disk limits are defaults the
// user may change (DiskLimits); the others are fixed.
const (
	// DefaultMinFree is the free space incoming files never eat into:
	// enough for the system and the user's own work to go on, however
	// much a peer sends.
	DefaultMinFree int64 = 2 << 30
	// DefaultMaxStagedPerPeer bounds what one peer may hold in
	// unfinished incoming files, each counted at its full size: room for
	// a few disk images or long videos at once, while no peer's offers
	// can take a whole disk.
	DefaultMaxStagedPerPeer int64 = 100 << 30
	// MaxUnfinishedPerPeer bounds a peer's unfinished incoming
	// transfers. A sender has at most a few dozen files in flight, so
	// this leaves room for many interrupted ones, while records and
	// staging files cannot pile up.
	MaxUnfinishedPerPeer = 256
	// evictableAfter is how long a peer's unfinished transfer must be
	// untouched before a new offer from that peer may take its place
	// when the peer is at a limit: longer than any reconnect or retry
	// back-off of a sender still sending it (at most two minutes).
	evictableAfter = time.Hour
	// memoryPerPeer bounds the receive buffers (a chunk each) of one
	// peer's transfers: 64 chunks of the default size, or four of the
	// largest, more than the three large files a sender sends at once.
	memoryPerPeer int64 = 64 << 20
	// memoryTotal bounds the receive buffers of all peers together:
	// four peers at their full budget. Beyond it, offers are answered
	// busy and the senders try again a little later.
	memoryTotal int64 = 256 << 20
)

// DiskLimits bound what peers may take of the receiving node's disk.
type DiskLimits struct {
	// MinFree is the free space, in bytes, that incoming files never
	// eat into: an offer that would leave less is refused.
	MinFree int64
	// MaxStagedPerPeer bounds the bytes one peer may hold in unfinished
	// incoming files, each counted at its full (reserved) size.
	MaxStagedPerPeer int64
}

// DefaultDiskLimits returns the limits of a new node.
func DefaultDiskLimits() DiskLimits {
	return DiskLimits{MinFree: DefaultMinFree, MaxStagedPerPeer: DefaultMaxStagedPerPeer}
}

// Quota is what peers may take of a receiving node: disk space within
// DiskLimits, and memory for receive buffers. One Quota serves every
// Receiver of a node (files still arriving into an old downloads folder
// after a reload count too), and its disk limits may change while
// transfers run. Make one with NewQuota.
type Quota struct {
	// admit serialises admissions: a peer's usage and the free space
	// are checked, the space reserved and the transfer recorded as one
	// step, so two offers cannot both take the last of it.
	admit sync.Mutex

	mu        sync.Mutex // guards following
	disk      DiskLimits
	memory    map[string]int64 // receive buffer bytes held, by peer
	memoryAll int64            // the sum of memory
	// pending are admitted transfers not recorded yet, by peer: they
	// count as the peer's, and their sizes as taken from the free space,
	// until their records (or their refusals) speak for them.
	pending    map[string]pendingUse
	pendingAll int64 // the sum of pending sizes
	// noneStaleBefore is, by peer, a time before which none of the
	// peer's unfinished transfers can be evictable (see makeRoom), so a
	// peer at its limit is not read through on every offer.
	noneStaleBefore map[string]time.Time

	// For tests: set before the Quota is used, except skipSpaceCheck,
	// which mu guards.
	memoryPerPeer, memoryTotal int64 // the memory budgets
	// skipSpaceCheck lets an offer that the free-space check would
	// refuse reach fallocate, to test what a failed one leaves.
	skipSpaceCheck bool
}

// spaceChecked reports whether the free space is checked before
// fallocate: always, but in a test of what a failed fallocate leaves.
func (q *Quota) spaceChecked() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !q.skipSpaceCheck
}

// NewQuota returns a Quota with the given disk limits and no memory
// held.
func NewQuota(disk DiskLimits) *Quota {
	return &Quota{
		disk: disk, memory: map[string]int64{}, pending: map[string]pendingUse{}, noneStaleBefore: map[string]time.Time{},
		memoryPerPeer: memoryPerPeer, memoryTotal: memoryTotal,
	}
}

// pendingUse is what a peer's admitted transfers, not recorded yet, take.
type pendingUse struct {
	transfers int
	bytes     int64
}

// addPending counts an admitted transfer of size bytes until settle.
func (q *Quota) addPending(peer string, size int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pending[peer]
	q.pending[peer] = pendingUse{p.transfers + 1, p.bytes + size}
	q.pendingAll += size
}

// settle stops counting an admitted transfer: its record was written
// (and counts in the store) or it was refused after all.
func (q *Quota) settle(peer string, size int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pending[peer]
	if p.transfers <= 1 {
		delete(q.pending, peer)
	} else {
		q.pending[peer] = pendingUse{p.transfers - 1, p.bytes - size}
	}
	q.pendingAll -= size
}

// pendingOf returns what peer's admitted transfers not recorded yet
// take, and what all peers' take of the free space.
func (q *Quota) pendingOf(peer string) (pendingUse, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.pending[peer], q.pendingAll
}

// mayBeStale reports whether one of peer's unfinished transfers may be
// untouched for evictableAfter by now.
func (q *Quota) mayBeStale(peer string, now time.Time) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return !now.Before(q.noneStaleBefore[peer])
}

// noneStaleUntil notes that none of peer's unfinished transfers can be
// evictable before t: the least recently touched was touched at
// t-evictableAfter, and a transfer's time only moves forward.
func (q *Quota) noneStaleUntil(peer string, t time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.noneStaleBefore[peer] = t
}

// SetDiskLimits changes the disk limits for offers from now on.
func (q *Quota) SetDiskLimits(disk DiskLimits) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.disk = disk
}

// DiskLimits returns the disk limits in force.
func (q *Quota) DiskLimits() DiskLimits {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.disk
}

// takeMemory counts n bytes of receive buffer against peer's budget and
// the total; it reports false, taking nothing, when either would be
// exceeded.
func (q *Quota) takeMemory(peer string, n int64) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if n > q.memoryPerPeer-q.memory[peer] || n > q.memoryTotal-q.memoryAll {
		return false
	}
	q.memory[peer] += n
	q.memoryAll += n
	return true
}

// releaseMemory gives back what takeMemory took.
func (q *Quota) releaseMemory(peer string, n int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.memory[peer] -= n
	q.memoryAll -= n
	if q.memory[peer] <= 0 {
		delete(q.memory, peer)
	}
}
