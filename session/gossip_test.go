package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/testutil"
)

func TestDecodeCandidates(t *testing.T) {
	many := CandidatesFrame{}
	for i := range MaxToldCandidates + 1 {
		many.Candidates = append(many.Candidates, WireCandidate{Addr: fmt.Sprintf("203.0.113.%d:4000", i), Kind: PathDirect})
	}
	manyJSON, _ := json.Marshal(many)
	tests := []struct {
		name    string
		payload string
		want    []Candidate
		err     error
		nat     NATKind
		seq     uint64
	}{
		{"empty list", `{"candidates":[]}`, []Candidate{}, nil, NATUnknown, 0},
		{"kinds", `{"candidates":[{"addr":"203.0.113.7:41641","kind":"direct"},{"addr":"192.168.1.20:41641","kind":"lan"},{"addr":"[2001:db8::1]:3478","kind":"relay"}]}`,
			[]Candidate{
				{Addr: netip.MustParseAddrPort("203.0.113.7:41641"), Kind: PathDirect, Source: SourceSession},
				{Addr: netip.MustParseAddrPort("192.168.1.20:41641"), Kind: PathLAN, Source: SourceSession},
				{Addr: netip.MustParseAddrPort("[2001:db8::1]:3478"), Kind: PathRelay, Source: SourceSession},
			}, nil, NATUnknown, 0},
		{"mapped address is unmapped", `{"candidates":[{"addr":"[::ffff:203.0.113.7]:1","kind":"direct"}]}`,
			[]Candidate{{Addr: netip.MustParseAddrPort("203.0.113.7:1"), Kind: PathDirect, Source: SourceSession}}, nil, NATUnknown, 0},
		{"unknown kind skipped", `{"candidates":[{"addr":"203.0.113.7:1","kind":"carrier-pigeon"},{"addr":"203.0.113.8:1","kind":""}]}`, []Candidate{}, nil, NATUnknown, 0},
		{"unusable addresses skipped", `{"candidates":[{"addr":"203.0.113.7:0","kind":"direct"},{"addr":"0.0.0.0:1","kind":"direct"},{"addr":"224.0.0.1:1","kind":"lan"},{"addr":"127.0.0.1:1","kind":"lan"},{"addr":"[::1]:1","kind":"lan"},{"addr":"[fe80::1%eth0]:1","kind":"lan"},{"addr":"nonsense","kind":"lan"}]}`, []Candidate{}, nil, NATUnknown, 0},
		{"unknown fields ignored", `{"candidates":[{"addr":"203.0.113.7:1","kind":"direct","prio":3}],"extra":true}`,
			[]Candidate{{Addr: netip.MustParseAddrPort("203.0.113.7:1"), Kind: PathDirect, Source: SourceSession}}, nil, NATUnknown, 0},
		{"hard NAT", `{"candidates":[{"addr":"203.0.113.7:1","kind":"direct"}],"nat":"hard"}`,
			[]Candidate{{Addr: netip.MustParseAddrPort("203.0.113.7:1"), Kind: PathDirect, Source: SourceSession}}, nil, NATHard, 0},
		{"easy NAT, no candidates", `{"candidates":[],"nat":"easy"}`, []Candidate{}, nil, NATEasy, 0},
		{"NAT not said (an older peer)", `{"candidates":[]}`, []Candidate{}, nil, NATUnknown, 0},
		{"a newer peer's kind of NAT", `{"candidates":[],"nat":"cgnat"}`, []Candidate{}, nil, NATUnknown, 0},
		{"NAT of the wrong type", `{"candidates":[],"nat":1}`, nil, ErrBadFrame, NATUnknown, 0},
		{"numbered", `{"candidates":[],"nat":"hard","seq":7}`, []Candidate{}, nil, NATHard, 7},
		{"negative number", `{"candidates":[],"seq":-1}`, nil, ErrBadFrame, NATUnknown, 0},
		{"number too big", `{"candidates":[],"seq":18446744073709551616}`, nil, ErrBadFrame, NATUnknown, 0},
		{"too many", string(manyJSON), nil, ErrBadFrame, NATUnknown, 0},
		{"too large", `{"candidates":[],"pad":"` + strings.Repeat("x", maxCandidatesFrame) + `"}`, nil, ErrFrameTooLarge, NATUnknown, 0},
		{"not JSON", `{candidates}`, nil, ErrBadFrame, NATUnknown, 0},
		{"wrong shape", `{"candidates":{"addr":"203.0.113.7:1"}}`, nil, ErrBadFrame, NATUnknown, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeCandidates([]byte(tc.payload))
			if !errors.Is(err, tc.err) {
				t.Fatalf("DecodeCandidates = %+v, %v; want error %v", got, err, tc.err)
			}
			if err == nil && (!slices.Equal(got.Candidates, tc.want) || got.NAT != tc.nat || got.Seq != tc.seq) {
				t.Fatalf("DecodeCandidates = %+v; want %v, NAT %q, seq %d", got, tc.want, tc.nat, tc.seq)
			}
		})
	}
}

// A node tells only MaxToldCandidates, and what it tells decodes to what
// it has.
func TestCandidatesFrameRoundTrip(t *testing.T) {
	var own []Candidate
	for i := range MaxToldCandidates + 3 {
		own = append(own, Candidate{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}), 4000), Kind: PathDirect})
	}
	var buf bytes.Buffer
	if err := WriteFrame(&buf, FrameCandidates, candidatesFrame(news{cands: own, nat: NATHard, seq: 9})); err != nil {
		t.Fatal(err)
	}
	typ, payload, err := ReadFrame(&buf)
	if err != nil || typ != FrameCandidates {
		t.Fatalf("ReadFrame = %d, %v", typ, err)
	}
	told, err := DecodeCandidates(payload)
	if err != nil || len(told.Candidates) != MaxToldCandidates || told.NAT != NATHard || told.Seq != 9 {
		t.Fatalf("decoded %d candidates, NAT %q, seq %d, %v", len(told.Candidates), told.NAT, told.Seq, err)
	}
	for i, c := range told.Candidates {
		if c.Addr != own[i].Addr || c.Kind != own[i].Kind || c.Source != SourceSession {
			t.Fatalf("candidate %d: %+v, want %+v", i, c, own[i])
		}
	}
}

func FuzzDecodeCandidates(f *testing.F) {
	f.Add([]byte(`{"candidates":[{"addr":"203.0.113.7:41641","kind":"direct"},{"addr":"[2001:db8::1]:1","kind":"relay"}]}`))
	f.Add([]byte(`{"candidates":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"candidates":[{"addr":"198.51.100.4:9","kind":"direct"}],"nat":"hard"}`))
	f.Add([]byte(`{"nat":"easy","candidates":[],"nat":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		told, err := DecodeCandidates(b)
		if err != nil {
			return
		}
		cands, kind := told.Candidates, told.NAT
		if len(b) > maxCandidatesFrame || len(cands) > MaxToldCandidates {
			t.Fatalf("accepted %d candidates from %d bytes", len(cands), len(b))
		}
		if kind != NATUnknown && !kind.known() {
			t.Fatalf("returned NAT kind %q", kind)
		}
		for _, c := range cands {
			if !reachableCandidate(c.Addr) || c.Addr.Addr().Is4In6() || c.Source != SourceSession || c.Kind.Priority() == priorityUnknown {
				t.Fatalf("accepted %+v", c)
			}
		}
	})
}

// A node tells its connected peer its candidates when the session starts
// and again when they change; the peer takes them as learned from the
// session and reports them to its owner.
func TestConnectedPeerHearsCandidates(t *testing.T) {
	var mu sync.Mutex
	var heard [][]Candidate
	heardRelay := func(relay Candidate) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.ContainsFunc(heard, func(cands []Candidate) bool { return slices.Contains(cands, relay) })
	}
	a := newTestNode(t, "alice")
	b := &testNode{Node: startNode(t, NodeConfig{Name: "bob", Events: Events{PeerCandidates: func(id NodeID, cands []Candidate) {
		if id != a.ID() {
			t.Errorf("candidates from %s, want alice", id.Short())
		}
		mu.Lock()
		defer mu.Unlock()
		heard = append(heard, cands)
	}}})}
	a.AddPeer(b.info())
	b.AddPeer(a.info())
	testutil.WaitFor(t, 10*time.Second, "alice and bob to connect", func() bool {
		return stateOf(a, b.ID()).State == StateConnected && stateOf(b, a.ID()).State == StateConnected
	})
	relay := Candidate{Addr: netip.MustParseAddrPort("198.18.0.4:50000"), Kind: PathRelay}
	a.SetExtraCandidates("relay", []Candidate{relay})
	want := Candidate{Addr: relay.Addr, Kind: PathRelay, Source: SourceSession}
	testutil.WaitFor(t, 5*time.Second, "bob to hear alice's relay candidate", func() bool { return heardRelay(want) })
	if paths := stateOf(b, a.ID()).Paths; !slices.ContainsFunc(paths, func(p Path) bool {
		return p.Addr == relay.Addr && p.Kind == PathRelay && p.Source == SourceSession
	}) {
		t.Fatalf("bob's paths to alice: %v", paths)
	}
}

// A peer that keeps telling its candidates is heard a few times a
// second at most: each frame may wake the peer loop and reach the store.
func TestCandidatesFloodIsBounded(t *testing.T) {
	var heard atomic.Int32
	a := newTestNode(t, "alice")
	b := &testNode{Node: startNode(t, NodeConfig{Name: "bob", Events: Events{PeerCandidates: func(NodeID, []Candidate) { heard.Add(1) }}})}
	a.AddPeer(b.info())
	b.AddPeer(a.info())
	testutil.WaitFor(t, 10*time.Second, "alice and bob to connect", func() bool {
		return stateOf(a, b.ID()).State == StateConnected && stateOf(b, a.ID()).State == StateConnected
	})
	sess := a.peer(b.ID()).session()
	before := heard.Load()
	start := time.Now()
	cands := []Candidate{{Addr: netip.MustParseAddrPort("198.18.0.4:50000"), Kind: PathRelay}}
	const sent = 40
	for range sent {
		a.tellCandidates(sess, news{cands: cands})
	}
	time.Sleep(500 * time.Millisecond) // let them all arrive
	limit := toldBurst + int(time.Since(start).Seconds()*float64(toldRate)) + 1
	if got := int(heard.Load() - before); got > limit {
		t.Fatalf("bob took %d of %d frames sent at once, want at most %d", got, sent, limit)
	}
}

// A peer's NAT kind, as told over its session, replaces what the node
// knew (here: its connection string said hard) both ways, and the owner
// hears of each change once; a frame that does not say (an older peer's,
// or one that does not know) changes nothing.
func TestConnectedPeerTellsNATKind(t *testing.T) {
	type heard struct {
		id   NodeID
		hard bool
	}
	var mu sync.Mutex
	var got []heard
	var frames atomic.Int32 // frames bob took, each with candidates
	a := newTestNode(t, "alice")
	b := &testNode{Node: startNode(t, NodeConfig{Name: "bob", Events: Events{
		PeerNAT: func(id NodeID, hard bool) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, heard{id, hard})
		},
		PeerCandidates: func(NodeID, []Candidate) { frames.Add(1) },
	}})}
	info := a.info()
	info.HardNAT = true
	a.AddPeer(b.info())
	b.AddPeer(info)
	testutil.WaitFor(t, 10*time.Second, "alice and bob to connect", func() bool {
		return stateOf(a, b.ID()).State == StateConnected && stateOf(b, a.ID()).State == StateConnected
	})
	// On loopback alice has no NAT discovery: she says nothing of her NAT
	// when the session starts (and her loopback candidate is not one to
	// tell), and bob still takes her for hard.
	if !b.peer(a.ID()).isHard() {
		t.Fatal("bob forgot that alice's string said nat=hard, with nothing told")
	}
	sess := a.peer(b.ID()).session()
	relay := []Candidate{{Addr: netip.MustParseAddrPort("198.18.0.4:50000"), Kind: PathRelay}}
	steps := []struct {
		name string
		kind NATKind
		want bool
		// events is how many changes bob's owner has heard of by then.
		events int
	}{
		{"easy", NATEasy, false, 1},
		{"easy again", NATEasy, false, 1},
		{"not said", NATUnknown, false, 1},
		{"hard", NATHard, true, 2},
		{"not said after hard", NATUnknown, true, 2},
		{"easy after hard", NATEasy, false, 3},
	}
	for _, step := range steps {
		time.Sleep(time.Second / time.Duration(toldRate)) // within the rate limit
		before := frames.Load()
		a.tellCandidates(sess, news{cands: relay, nat: step.kind}) // unnumbered, as from an older build
		testutil.WaitFor(t, 5*time.Second, "bob to take the frame saying "+step.name, func() bool { return frames.Load() > before })
		mu.Lock()
		events := len(got)
		mu.Unlock()
		if hard := b.peer(a.ID()).isHard(); events != step.events || hard != step.want {
			t.Fatalf("after %s: bob takes alice for hard: %v, his owner heard %d changes; want %v, %d", step.name, hard, events, step.want, step.events)
		}
	}
	mu.Lock()
	want := []heard{{a.ID(), false}, {a.ID(), true}, {a.ID(), false}}
	if !slices.Equal(got, want) {
		mu.Unlock()
		t.Fatalf("bob's owner heard %v, want %v", got, want)
	}
	got = nil
	mu.Unlock()

	// Numbered frames of one session may arrive out of order: one
	// overtaken by a newer one is not taken.
	bobs := b.peer(a.ID()).session()
	for _, step := range []struct {
		hard bool
		seq  uint64
		want bool
	}{
		{true, 5, true},
		{false, 3, true}, // sent before 5
		{false, 5, true}, // 5 again: not newer
		{false, 6, false},
		{true, 0, true}, // unnumbered: an older build's, taken as it comes
		{false, 1, true},
	} {
		b.heardNAT(bobs, step.hard, step.seq)
		if hard := b.peer(a.ID()).isHard(); hard != step.want {
			t.Fatalf("after a frame numbered %d saying hard=%v, bob takes alice for hard: %v", step.seq, step.hard, hard)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []heard{{a.ID(), true}, {a.ID(), false}, {a.ID(), true}}; !slices.Equal(got, want) {
		t.Fatalf("bob's owner heard %v, want %v", got, want)
	}
}
