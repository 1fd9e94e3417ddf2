package congestion

import (
	"testing"

	"github.com/quic-go/quic-go/internal/protocol"
	"github.com/quic-go/quic-go/internal/utils"

	"github.com/stretchr/testify/require"
)

// TestNewSenderBacksOffAsItsAlgorithm: the options reach the controller.
// NewReno keeps 0.7 of its window after a loss; CUBIC emulating N
// connections keeps (N-1+0.7)/N of it.
func TestNewSenderBacksOffAsItsAlgorithm(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
		kept float64
	}{
		{"reno, the zero value", Options{}, 0.7},
		{"reno ignores connections", Options{Algorithm: AlgorithmReno, CubicConnections: 8}, 0.7},
		{"cubic, 0 connections means 1", Options{Algorithm: AlgorithmCubic}, 0.7},
		{"cubic emulating 8", Options{Algorithm: AlgorithmCubic, CubicConnections: 8}, (8 - 1 + 0.7) / 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var clock mockClock
			s := NewSender(&clock, &utils.RTTStats{}, &utils.ConnectionStats{}, protocol.InitialPacketSize, tc.opts, nil)
			require.Equal(t, tc.opts.Algorithm != AlgorithmCubic, s.reno)
			var inFlight protocol.ByteCount
			pn := protocol.PacketNumber(1)
			for s.CanSend(inFlight) {
				s.OnPacketSent(clock.Now(), inFlight, pn, maxDatagramSize, true)
				inFlight += maxDatagramSize
				pn++
			}
			before := s.GetCongestionWindow()
			s.OnCongestionEvent(1, maxDatagramSize, inFlight)
			require.InDelta(t, tc.kept, float64(s.GetCongestionWindow())/float64(before), 0.01)
		})
	}
}
