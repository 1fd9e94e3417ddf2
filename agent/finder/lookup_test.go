package finder

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/dht"
	"github.com/punchdrop/punchdrop/rendezvous"
	"github.com/punchdrop/punchdrop/session"
)

func TestRecordCandidates(t *testing.T) {
	c := func(addr string, kind session.PathKind) session.Candidate {
		return session.Candidate{Addr: netip.MustParseAddrPort(addr), Kind: kind}
	}
	rc := func(kind rendezvous.Kind, addr string) rendezvous.Candidate {
		return rendezvous.Candidate{Kind: kind, Addr: netip.MustParseAddrPort(addr)}
	}
	var many []session.Candidate
	var capped []rendezvous.Candidate
	for i := range rendezvous.MaxCandidates + 2 {
		a := fmt.Sprintf("198.18.0.%d:4000", i+1)
		many = append(many, c(a, session.PathDirect))
		if i < rendezvous.MaxCandidates {
			capped = append(capped, rc(rendezvous.Public, a))
		}
	}
	tests := []struct {
		name string
		own  []session.Candidate
		want []rendezvous.Candidate
	}{
		{"kinds", []session.Candidate{c("198.18.0.11:4000", session.PathDirect), c("198.19.1.10:4000", session.PathLAN), c("198.18.0.4:50000", session.PathRelay)},
			[]rendezvous.Candidate{rc(rendezvous.Public, "198.18.0.11:4000"), rc(rendezvous.Relay, "198.18.0.4:50000")}},
		{"no kind is direct", []session.Candidate{c("198.18.0.11:4000", "")}, []rendezvous.Candidate{rc(rendezvous.Public, "198.18.0.11:4000")}},
		{"unusable addresses", []session.Candidate{c("192.168.1.2:4000", session.PathDirect), c("127.0.0.1:4000", session.PathDirect), c("100.64.0.1:4000", session.PathDirect), c("198.18.0.11:0", session.PathDirect)}, nil},
		{"mapped, repeated", []session.Candidate{c("[::ffff:198.18.0.11]:4000", session.PathDirect), c("198.18.0.11:4000", session.PathDirect)},
			[]rendezvous.Candidate{rc(rendezvous.Public, "198.18.0.11:4000")}},
		{"capped", many, capped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := recordCandidates(tc.own); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// fakeDHT serves items by target, and answers as many nodes as it says.
type fakeDHT struct {
	items    map[rendezvous.Target]rendezvous.Item
	answered int
}

func (f *fakeDHT) Put(_ context.Context, it rendezvous.Item) (dht.OpStats, error) {
	f.items[it.Target()] = it
	return dht.OpStats{Stored: 1, Answered: f.answered, Queried: f.answered}, nil
}

func (f *fakeDHT) Get(_ context.Context, target rendezvous.Target, _ []byte) (rendezvous.Item, dht.OpStats, error) {
	stats := dht.OpStats{Queried: 3, Answered: f.answered}
	it, ok := f.items[target]
	if !ok {
		return it, stats, dht.ErrNotFound
	}
	return it, stats, nil
}

func newKey(t *testing.T) (session.NodeID, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := session.NodeIDFromKey(pub)
	return id, priv
}

// seal makes the item of a record of seq made at made, for period p.
func seal(t *testing.T, priv ed25519.PrivateKey, p rendezvous.Period, seq int64, made time.Time, addr string) rendezvous.Item {
	t.Helper()
	it, err := rendezvous.Seal(priv, p, rendezvous.Record{Seq: seq, Time: made, Candidates: []rendezvous.Candidate{{Kind: rendezvous.Public, Addr: netip.MustParseAddrPort(addr)}}})
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func TestLookup(t *testing.T) {
	id, priv := newKey(t)
	_, other := newKey(t)
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC) // morning: the neighbour period is the day before
	periods := rendezvous.LookupPeriods(now)
	today, yesterday := periods[0], periods[1]
	made := now.Add(-time.Minute)
	targetOf := func(p rendezvous.Period) rendezvous.Target {
		key, err := rendezvous.BlindPublicKey(ed25519.PublicKey(id[:]), p)
		if err != nil {
			t.Fatal(err)
		}
		return rendezvous.MutableTarget(key, nil)
	}
	// at is what the DHT serves at the peer's target of each period.
	type at map[rendezvous.Period]rendezvous.Item
	tests := []struct {
		name     string
		items    at
		answered int
		held     int64
		wantSeq  int64
		wantErr  error
		result   string
	}{
		{"today's", at{today: seal(t, priv, today, 100, made, "198.18.0.11:4000")}, 3, 0, 100, nil, ResultFound},
		{"the newer of two days", at{today: seal(t, priv, today, 100, made, "198.18.0.11:4000"), yesterday: seal(t, priv, yesterday, 101, made, "198.18.0.12:4000")}, 3, 0, 101, nil, ResultFound},
		{"replay of an older one", at{today: seal(t, priv, today, 100, made, "198.18.0.11:4000")}, 3, 100, 0, rendezvous.ErrNotNewer, ResultNotNewer},
		{"too old", at{today: seal(t, priv, today, 100, now.Add(-rendezvous.MaxRecordAge-time.Minute), "198.18.0.11:4000")}, 3, 0, 0, rendezvous.ErrStale, ResultRefused},
		{"someone else's at the target", at{today: seal(t, other, today, 100, made, "198.18.0.13:4000")}, 3, 0, 0, rendezvous.ErrWrongKey, ResultRefused},
		{"nobody holds one", nil, 3, 0, 0, ErrNoRecord, ResultNoRecord},
		{"nobody answers", nil, 0, 0, 0, ErrDHTUnreachable, ResultUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakeDHT{items: map[rendezvous.Target]rendezvous.Item{}, answered: tc.answered}
			for p, it := range tc.items {
				d.items[targetOf(p)] = it
			}
			rec, stats, err := Lookup(context.Background(), d, id, now, tc.held)
			if !errors.Is(err, tc.wantErr) || rec.Seq != tc.wantSeq {
				t.Fatalf("Lookup = seq %d, %v; want seq %d, %v", rec.Seq, err, tc.wantSeq, tc.wantErr)
			}
			if got := lookupResult(err); got != tc.result {
				t.Errorf("result %q, want %q", got, tc.result)
			}
			if stats.Queried != 6 || stats.Answered != 2*tc.answered {
				t.Errorf("stats %+v: want both periods counted", stats)
			}
		})
	}
}
