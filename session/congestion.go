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
// CUBIC emulates (Chromium's knob). BenchmarkRealPaths, 100 Mbit/s,
// 16 lanes, 96 MiB, MiB/s (croc 4.6-7.0 on the last path):
//
//	      50 ms 0.5 %   50 ms 2 %   150 ms 0.5 %   150 ms 2 %
//	N=4       10.6         9.6          8.1           4.7
//	N=8       10.3        10.2          8.9           7.5
//	N=16      10.7        10.2          8.6           8.1
//
// 8 is the least that stays ahead of croc on every path.
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
