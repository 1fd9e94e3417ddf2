package congestion

import (
	"github.com/quic-go/quic-go/internal/protocol"
	"github.com/quic-go/quic-go/internal/utils"
	"github.com/quic-go/quic-go/qlogwriter"
)

// An Algorithm names a congestion controller (a punchdrop change: upstream
// always builds NewReno).
type Algorithm uint8

const (
	// AlgorithmReno is NewReno, upstream's only choice and the zero value.
	AlgorithmReno Algorithm = iota
	// AlgorithmCubic is CUBIC with Chromium's emulation of several TCP connections.
	AlgorithmCubic
)

// Options pick the controller of a connection's sender.
type Options struct {
	Algorithm Algorithm
	// CubicConnections is how many TCP connections CUBIC emulates; below 1
	// means 1.
	CubicConnections int
}

// NewSender builds the controller the options pick.
func NewSender(
	clock Clock,
	rttStats *utils.RTTStats,
	connStats *utils.ConnectionStats,
	initialMaxDatagramSize protocol.ByteCount,
	opts Options,
	qlogger qlogwriter.Recorder,
) *cubicSender {
	s := NewCubicSender(clock, rttStats, connStats, initialMaxDatagramSize, opts.Algorithm != AlgorithmCubic, qlogger)
	if opts.Algorithm == AlgorithmCubic && opts.CubicConnections > 1 {
		s.cubic.SetNumConnections(opts.CubicConnections)
	}
	return s
}
