package store

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/session"
)

func cand(addr string, kind session.PathKind, src session.Source) session.Candidate {
	return session.Candidate{Addr: netip.MustParseAddrPort(addr), Kind: kind, Source: src}
}

func TestMergeLearned(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a := cand("198.18.0.11:4000", session.PathDirect, session.SourceDHT)
	b := cand("198.19.1.10:4000", session.PathLAN, session.SourceLAN)
	addrs := func(l []LearnedAddr) []string {
		var out []string
		for _, x := range l {
			out = append(out, fmt.Sprintf("%s %s %s", x.Addr, x.Kind, x.Source))
		}
		return out
	}
	var many []session.Candidate
	for i := range MaxLearned + 4 {
		many = append(many, cand(fmt.Sprintf("198.18.1.%d:4000", i+1), session.PathDirect, session.SourceSession))
	}
	tests := []struct {
		name string
		kept []LearnedAddr
		at   time.Time
		add  []session.Candidate
		want []string
	}{
		{"new", nil, t0, []session.Candidate{a, b}, []string{"198.18.0.11:4000 direct dht", "198.19.1.10:4000 lan lan"}},
		{"known address takes the new kind, source and time, and goes last",
			[]LearnedAddr{{Addr: a.Addr, Kind: a.Kind, Source: a.Source, Seen: t0}, {Addr: b.Addr, Kind: b.Kind, Source: b.Source, Seen: t0}},
			t0.Add(time.Hour), []session.Candidate{cand("198.18.0.11:4000", session.PathDirect, session.SourceSession)},
			[]string{"198.19.1.10:4000 lan lan", "198.18.0.11:4000 direct session"}},
		{"too old is forgotten", []LearnedAddr{{Addr: a.Addr, Kind: a.Kind, Source: a.Source, Seen: t0}},
			t0.Add(LearnedMaxAge + time.Second), []session.Candidate{b}, []string{"198.19.1.10:4000 lan lan"}},
		{"bounded, the oldest go", nil, t0, many, func() []string {
			var want []string
			for _, c := range many[len(many)-MaxLearned:] {
				want = append(want, c.Addr.String()+" direct session")
			}
			return want
		}()},
		{"invalid and repeated ones are skipped", nil, t0, []session.Candidate{{}, a, a}, []string{"198.18.0.11:4000 direct dht"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := addrs(mergeLearned(tc.kept, tc.at, tc.add)); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// Learned addresses and the record's sequence number outlive a restart,
// and a lower sequence number never replaces a higher one.
func TestLearnedAndRecordSeqPersist(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	id := nid("B")
	if err := s.PutPeer(Peer{ID: id, Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.NoteLearned(id, now, cand("198.18.0.11:4000", session.PathDirect, session.SourceDHT)); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		seq    int64
		raised bool
	}{{100, true}, {99, false}, {100, false}, {101, true}} {
		if raised, err := s.RaiseRecordSeq(id, step.seq); err != nil || raised != step.raised {
			t.Fatalf("RaiseRecordSeq(%d) = %v, %v; want %v", step.seq, raised, err, step.raised)
		}
	}
	if _, err := s.RaiseRecordSeq(nid("nobody"), 5); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RaiseRecordSeq for a stranger: %v", err)
	}
	if err := s.NoteLearned(nid("nobody"), now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("NoteLearned for a stranger: %v", err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	peers, err := s.Peers()
	if err != nil || len(peers) != 1 {
		t.Fatalf("Peers = %v, %v", peers, err)
	}
	p := peers[0]
	if p.RecordSeq != 101 || len(p.Learned) != 1 || p.Learned[0].Candidate() != cand("198.18.0.11:4000", session.PathDirect, session.SourceDHT) {
		t.Fatalf("after reopening: %+v", p)
	}
	if raised, _ := s.RaiseRecordSeq(id, 100); raised {
		t.Fatal("an older sequence number replaced the kept one after a restart")
	}
}
