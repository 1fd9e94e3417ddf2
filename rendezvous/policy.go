package rendezvous

import "time"

// Timing of publishing and looking up records.
const (
	// ItemLifetime is how long a DHT node keeps an item that is not put
	// again: BEP 44 lets nodes drop items after two hours.
	ItemLifetime = 2 * time.Hour
	// RepublishInterval is how often a node puts its record again even
	// when nothing changed (it also puts at once on every change and at
	// each new period): four times per ItemLifetime, so a record survives
	// three failed rounds, and churn in the DHT's closest nodes is
	// repaired within half an hour.
	RepublishInterval = 30 * time.Minute
	// MaxClockSkew is how far in the future a record's time may be. Clocks
	// kept by NTP are within a second; two hours also lets through a clock
	// that is off by a daylight-saving hour, and little worse.
	MaxClockSkew = 2 * time.Hour
	// MaxRecordAge is how old a record's time may be: a record is put
	// again every RepublishInterval with a fresh time, and a DHT node
	// serves it at most ItemLifetime after the last put, by clocks that may
	// disagree by MaxClockSkew. An older record is from a node that has
	// been gone for hours, or one a DHT node kept to replay.
	MaxRecordAge = ItemLifetime + MaxClockSkew
	// LookupBackoffMin is the wait after a first lookup that found nothing
	// useful; each further failure doubles it. Two peers that both moved
	// while apart start at about the same time, and each looks the other
	// up before the other has published: the second lookup must come
	// soon for them to meet within a minute. Doubling from 15 s costs six
	// lookups before the wait reaches LookupBackoffMax.
	LookupBackoffMin = 15 * time.Second
	// LookupBackoffMax caps the wait between lookups of an unreachable
	// peer: a lookup costs a DHT traversal (tens to a hundred datagrams on
	// the mainline DHT), and a peer that comes back publishes at once, so
	// four lookups an hour find it soon enough.
	LookupBackoffMax = 15 * time.Minute
)

// NextSeq returns the sequence number for a new record: higher than prev,
// the highest this node has used or seen in the DHT for itself (0 if
// none), and at least the current Unix time in seconds. Taking the time
// makes sequence numbers rise across restarts without keeping state; the
// max with prev+1 keeps them rising when the clock steps back or records
// change faster than once a second.
func NextSeq(prev int64, now time.Time) int64 {
	return max(prev+1, now.Unix())
}

// LookupBackoff returns how long to wait before looking up an unreachable
// peer again after failures lookups in a row that did not lead to it
// (failures ≥ 1): LookupBackoffMin doubling up to LookupBackoffMax. The
// caller adds jitter.
func LookupBackoff(failures int) time.Duration {
	d := LookupBackoffMin
	for i := 1; i < failures && d < LookupBackoffMax; i++ {
		d *= 2
	}
	return min(d, LookupBackoffMax)
}
