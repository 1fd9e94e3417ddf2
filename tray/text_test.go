package tray

import (
	"strings"
	"testing"

	"github.com/punchdrop/punchdrop/control"
)

func TestFindConnString(t *testing.T) {
	cs := "punchdrop:O76P65PM7YJJCIAWDOVXCLC73TZ5GBBJ6BBC72E6RFCT5JWGT4PQ@203.0.113.7:41641?lan=192.168.1.20:41641&name=alice"
	tests := []struct {
		in, want string
		ok       bool
	}{
		{cs, cs, true},
		{"  " + cs + "\n", cs, true},
		{"here is mine: " + cs + " thanks!", cs, true},
		{`"` + cs + `",`, cs, true},
		{"<" + cs + ">", cs, true},
		{"no string here", "", false},
		{"", "", false},
		{"punchdrop:", "", false},
		{"see punchdrop.example.org", "", false},
	}
	for _, tt := range tests {
		got, ok := findConnString(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("findConnString(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestStatusLines(t *testing.T) {
	id := control.IDInfo{PublicAddr: "203.0.113.7:41641", NAT: control.NATInfo{Summary: "port-restricted cone NAT"}}
	if got, want := natLine(id), "port-restricted cone NAT · public 203.0.113.7:41641"; got != want {
		t.Errorf("natLine = %q, want %q", got, want)
	}
	if got := natLine(control.IDInfo{}); got != "NAT not probed yet · no public address yet" {
		t.Errorf("natLine(empty) = %q", got)
	}
	peers := []control.PeerInfo{
		{Name: "bob", State: control.StateConnected, Path: "direct"},
		{Name: "carol", State: control.StateOffline, Error: "cannot reach carol directly"},
		{Name: "dave", State: control.StateConnecting},
		{NodeID: "HT3QAHLLXXXX", State: control.StatePending, Addr: "198.51.100.9:4000"},
		{Name: "erin", State: control.StateConnected, Path: "relay"},
	}
	if got, want := peersLine(peers), "2 of 4 peers connected"; got != want {
		t.Errorf("peersLine = %q, want %q", got, want)
	}
	if got := peersLine(peers[3:4]); got != "No peers yet: use Connect peer" {
		t.Errorf("peersLine(only pending) = %q", got)
	}
	for p, want := range map[int]string{
		0: "bob — connected, direct",
		1: "carol — offline: cannot reach carol directly",
		2: "dave — connecting…",
		4: "erin — connected via relay",
	} {
		if got := peerTitle(peers[p]); got != want {
			t.Errorf("peerTitle(%s) = %q, want %q", peers[p].Name, got, want)
		}
	}
	if got, want := requestTitle(peers[3]), "node HT3QAHLL (198.51.100.9:4000)"; got != want {
		t.Errorf("requestTitle = %q, want %q", got, want)
	}
	long := control.PeerInfo{Name: strings.Repeat("x", 200), State: control.StateConnected}
	if got := peerTitle(long); len([]rune(got)) != maxLabel || !strings.HasSuffix(got, "…") {
		t.Errorf("a long name is not clipped: %d runes", len([]rune(got)))
	}
}

func TestTooltip(t *testing.T) {
	peers := []control.PeerInfo{{Name: "bob", State: control.StateConnected}, {Name: "carol", State: control.StateOffline}}
	sending := control.TransferInfo{ID: "1", PeerName: "bob", Direction: control.DirectionOut, Name: "report.pdf", Size: 100, Done: 42, State: control.TransferSending}
	receiving := control.TransferInfo{ID: "2", PeerName: "carol", Direction: control.DirectionIn, Name: "a.jpg", Size: 300, Done: 0, State: control.TransferReceiving}
	fast := sending
	fast.RateBps, fast.ETASec = 1.5*(1<<20), 200
	slow := receiving
	slow.RateBps, slow.ETASec = 0.5*(1<<20), 3*3600+61
	soon := sending
	soon.RateBps, soon.ETASec = 1000, 12
	queued := control.TransferInfo{ID: "3", PeerName: "carol", Direction: control.DirectionOut, Name: "b.jpg", State: control.TransferQueued}
	tests := []struct {
		name       string
		up, paused bool
		transfers  []control.TransferInfo
		want       string
	}{
		{"down", false, false, nil, "punchdrop — the agent is not running"},
		{"idle", true, false, nil, "punchdrop — 1 of 2 peers connected"},
		{"one", true, false, []control.TransferInfo{sending}, "punchdrop — sending report.pdf to bob, 42%"},
		{"one and queued", true, false, []control.TransferInfo{sending, queued}, "punchdrop — sending report.pdf to bob, 42% (1 more waiting)"},
		{"two", true, false, []control.TransferInfo{sending, receiving}, "punchdrop — 2 files moving, 10%"},
		{"one with rate", true, false, []control.TransferInfo{fast}, "punchdrop — sending report.pdf to bob, 42%, 1.5 MiB/s, about 3 min left"},
		{"one ending soon", true, false, []control.TransferInfo{soon}, "punchdrop — sending report.pdf to bob, 42%, 1000 B/s, about 10 s left"},
		{"two with rates", true, false, []control.TransferInfo{fast, slow}, "punchdrop — 2 files moving, 10%, 2.0 MiB/s, about 3 h 1 min left"},
		{"queued", true, false, []control.TransferInfo{queued}, "punchdrop — 1 file waiting for peers"},
		{"paused", true, true, []control.TransferInfo{queued}, "punchdrop — paused — 1 file waiting for peers"},
	}
	for _, tt := range tests {
		if got := tooltipText(tt.up, tt.paused, peers, tt.transfers); got != tt.want {
			t.Errorf("%s: tooltip %q, want %q", tt.name, got, tt.want)
		}
	}
	if got, want := capitalize(transferLine(receiving)), "Receiving a.jpg from carol, 0%"; got != want {
		t.Errorf("transferLine = %q, want %q", got, want)
	}
	if got, want := menuTransferLine(sending), "Sending report.pdf to bob (100 B)"; got != want {
		t.Errorf("menuTransferLine = %q, want %q", got, want)
	}
	if got, want := menuTransferLine(queued), "Waiting to send b.jpg to carol"; got != want {
		t.Errorf("menuTransferLine = %q, want %q", got, want)
	}
}
