package finder

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/rendezvous"
	"github.com/punchdrop/punchdrop/session"
)

// TestPublishRelayCandidates: what the node's own candidates put in its
// record is what a peer that looks it up gets to try: its public address
// as a direct path and its relayed address as a relay path, both found on
// the DHT; a node whose only usable candidate is a relay allocation (no
// STUN answer: its site drops UDP to the STUN server) still publishes it;
// one with only LAN candidates publishes nothing; a dual-stack one
// publishes its public addresses of both families.
func TestPublishRelayCandidates(t *testing.T) {
	pub := func(addr string) session.Candidate {
		return session.Candidate{Addr: netip.MustParseAddrPort(addr), Kind: session.PathDirect}
	}
	relay := func(addr string) session.Candidate {
		return session.Candidate{Addr: netip.MustParseAddrPort(addr), Kind: session.PathRelay}
	}
	lan := session.Candidate{Addr: netip.MustParseAddrPort("198.19.1.10:4000"), Kind: session.PathLAN}
	found := func(c session.Candidate) session.Candidate { c.Source = session.SourceDHT; return c }
	tests := []struct {
		name    string
		own     []session.Candidate
		want    []session.Candidate // what the peer's lookup yields
		wantErr error
	}{
		{"public and relay", []session.Candidate{pub("198.18.0.11:4000"), lan, relay("198.18.0.4:50000")},
			[]session.Candidate{found(pub("198.18.0.11:4000")), found(relay("198.18.0.4:50000"))}, nil},
		// A dual-stack node: public addresses of both families; a
		// unique-local IPv6 one is LAN-only.
		{"dual stack", []session.Candidate{pub("198.18.0.11:4000"), lan, pub("[2001:db8:0:1::a]:4000"), {Addr: netip.MustParseAddrPort("[fd00::a]:4000"), Kind: session.PathLAN}},
			[]session.Candidate{found(pub("198.18.0.11:4000")), found(pub("[2001:db8:0:1::a]:4000"))}, nil},
		{"IPv6 only", []session.Candidate{pub("[2001:db8:0:1::a]:4000")}, []session.Candidate{found(pub("[2001:db8:0:1::a]:4000"))}, nil},
		{"relay only", []session.Candidate{lan, relay("198.18.0.4:50000")}, []session.Candidate{found(relay("198.18.0.4:50000"))}, nil},
		{"LAN only", []session.Candidate{lan}, nil, errNothingToPublish},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, priv := newKey(t)
			d := &fakeDHT{items: map[rendezvous.Target]rendezvous.Item{}, answered: 3}
			p := newPublisher(priv, slog.New(slog.DiscardHandler), time.Now)
			p.set(recordCandidates(tc.own), 0)
			if err := p.publish(context.Background(), d); !errors.Is(err, tc.wantErr) {
				t.Fatalf("publish: %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr != nil {
				if len(d.items) != 0 {
					t.Fatalf("put %d items with nothing to publish", len(d.items))
				}
				return
			}
			rec, _, err := Lookup(context.Background(), d, id, time.Now(), 0)
			if err != nil {
				t.Fatalf("lookup: %v", err)
			}
			if got := sessionCandidates(rec); !slices.Equal(got, tc.want) {
				t.Fatalf("the peer finds %v, want %v", got, tc.want)
			}
			if st := p.lastStatus(); st.Candidates != len(tc.want) || st.Err != "" {
				t.Errorf("publish status %+v", st)
			}
		})
	}
}

// TestPublishHardNAT: the flag alone is a change worth a put, and it
// reaches the peer that looks the record up; without it the record is
// v1 (rendezvous), which says nothing of the NAT.
func TestPublishHardNAT(t *testing.T) {
	id, priv := newKey(t)
	d := &fakeDHT{items: map[rendezvous.Target]rendezvous.Item{}, answered: 3}
	p := newPublisher(priv, slog.New(slog.DiscardHandler), time.Now)
	own := recordCandidates([]session.Candidate{{Addr: netip.MustParseAddrPort("198.18.0.11:4000"), Kind: session.PathDirect}})
	for i, step := range []struct {
		flags   rendezvous.Flags
		changed bool
	}{{0, true}, {0, false}, {rendezvous.FlagHardNAT, true}, {rendezvous.FlagHardNAT, false}, {0, true}} {
		if changed := p.set(own, step.flags); changed != step.changed {
			t.Fatalf("step %d: set(flags %d) reported a change: %v, want %v", i, step.flags, changed, step.changed)
		}
		if err := p.publish(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		rec, _, err := Lookup(context.Background(), d, id, time.Now(), 0)
		if err != nil {
			t.Fatalf("lookup: %v", err)
		}
		if rec.Flags != step.flags || p.lastStatus().HardNAT != (step.flags != 0) {
			t.Fatalf("step %d: the peer finds flags %d (status %+v), want %d", i, rec.Flags, p.lastStatus(), step.flags)
		}
	}
}
