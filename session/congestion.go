package session

import (
	"fmt"

	"github.com/quic-go/quic-go"
)

// Congestion is how the node's QUIC connections answer loss: the
// congestion controller of each (our copy of quic-go can pick one,
// third_party/quic-go/PUNCHDROP.md).
type Congestion string

const (
	// CongestionCubic is CUBIC emulating cubicConnections TCP connections
	// on each QUIC connection, the default: a random loss costs a
	// connection little of its window, so a lossy Wi-Fi or mobile path
	// keeps its rate.
	CongestionCubic Congestion = "cubic"
	// CongestionReno is NewReno, what quic-go itself uses: each
	// connection yields like one TCP connection, and under random loss
	// moves ~1.22/sqrt(loss) packets a round trip (0.7 MiB/s at 50 ms
	// and 0.5 %).
	CongestionReno Congestion = "reno"
)

// cubicConnections is how many TCP connections each QUIC connection's
// CUBIC emulates (Chromium's knob, which QUIC there ran at 2).
// BenchmarkRealPaths, 100 Mbit/s, 16 lanes, 96 MiB: see agent.DefaultLanes.
const cubicConnections = 8

// Check says whether c is a congestion control the node knows.
func (c Congestion) Check() error {
	_, _, err := quicCongestion(c)
	return err
}

// quicCongestion is the quic-go setting of c ("" is the default).
func quicCongestion(c Congestion) (quic.CongestionAlgorithm, int, error) {
	switch c {
	case "", CongestionCubic:
		return quic.CongestionCubic, cubicConnections, nil
	case CongestionReno:
		return quic.CongestionReno, 0, nil
	}
	return 0, 0, fmt.Errorf("congestion control %q is not cubic or reno", c)
}
