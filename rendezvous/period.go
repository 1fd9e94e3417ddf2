package rendezvous

import (
	"encoding/binary"
	"time"
)

// periodLength is the length of a blinding period: one UTC day. Records of
// different days are unlinkable; a shorter period would make more of them
// (more lookups around each boundary, more puts) for little gain, a longer
// one would let a storing node follow one key for longer.
const periodLength = 24 * time.Hour

// Period numbers the UTC day a record is published for: days since the
// Unix epoch. Each period has its own blinded key, DHT target and record
// key.
type Period int64

// PeriodOf returns the period that t falls in.
func PeriodOf(t time.Time) Period {
	secs := t.Unix()
	day := int64(periodLength / time.Second)
	p := secs / day
	if secs < 0 && secs%day != 0 {
		p-- // floor, not truncation, before 1970
	}
	return Period(p)
}

// Start returns the first instant of p.
func (p Period) Start() time.Time {
	return time.Unix(int64(p)*int64(periodLength/time.Second), 0).UTC()
}

// bytes is p as 8 big-endian bytes, the form every derivation hashes.
func (p Period) bytes() []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(p))
}

// LookupPeriods returns the periods to look a peer up in at now: the
// current one, then the neighbour nearer to now (the previous one in the
// first half of the day, the next one in the second half). A publisher whose
// clock is up to half a day off, or that has not republished since
// midnight, is found in the neighbour. Look up both and keep the record
// with the higher sequence number that opens.
func LookupPeriods(now time.Time) [2]Period {
	p := PeriodOf(now)
	if now.Sub(p.Start()) < periodLength/2 {
		return [2]Period{p, p - 1}
	}
	return [2]Period{p, p + 1}
}
