package session

import (
	"net"
	"testing"

	"github.com/quic-go/quic-go"
)

func TestCongestionPicksQUICController(t *testing.T) {
	for _, tt := range []struct {
		in        Congestion
		algorithm quic.CongestionAlgorithm
		emulated  int
		wantErr   bool
	}{
		{"", quic.CongestionCubic, cubicConnections, false},
		{CongestionCubic, quic.CongestionCubic, cubicConnections, false},
		{CongestionReno, quic.CongestionReno, 0, false},
		{"bbr", 0, 0, true},
		{"Cubic", 0, 0, true},
	} {
		algorithm, emulated, err := quicCongestion(tt.in)
		if (err != nil) != tt.wantErr || algorithm != tt.algorithm || emulated != tt.emulated {
			t.Errorf("quicCongestion(%q) = %v, %d, %v; want %v, %d, error %v", tt.in, algorithm, emulated, err, tt.algorithm, tt.emulated, tt.wantErr)
		}
		if (tt.in.Check() != nil) != tt.wantErr {
			t.Errorf("Congestion(%q).Check() = %v", tt.in, tt.in.Check())
		}
	}
}

// A node asked for a controller it does not know is not made, and its
// socket is closed.
func TestNewNodeRefusesUnknownCongestion(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ident, err := NewIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewNode(NodeConfig{Identity: ident, Conn: conn, Congestion: "bbr"}); err == nil {
		t.Fatal("NewNode took congestion bbr")
	}
	if _, err := conn.WriteToUDP([]byte("x"), conn.LocalAddr().(*net.UDPAddr)); err == nil {
		t.Error("the socket is still open")
	}
}
