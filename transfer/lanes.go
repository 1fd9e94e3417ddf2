package transfer

import "context"

// Lanes. Random loss (Wi-Fi, mobile links) makes a loss-based congestion
// controller shrink its window at every lost packet, so one QUIC
// connection moves a file at a fraction of the link: 0.6 MiB/s at 0.5 %
// loss and 50 ms round trip on a 100 Mbit/s link (make bench). quic-go
// lets no other controller in, but each connection has its own: a
// sender that stripes a file's chunks over n connections moves about n
// times as much, as a downloader with parallel TCP connections does.
//
// A lane is a stream on an extra connection to the same peer, which the
// session layer opens (session.Session.OpenLanes). Its first frame, LANE,
// names the transfer; CHUNKs follow, as on the OFFER's stream, which
// still carries everything else: ACKs, NAKs and END. A chunk goes on
// whichever stream is free to take it. A lane that fails costs only
// itself: the chunks it had not got ACKed are sent on the others. A
// receiver takes at most MaxLanes lanes per file, and reads every
// stream of a file into the same receive buffer, cut into pieces
// (stream.go), so a striped file takes no more memory than one on a
// single stream.

// LaneOpener opens up to n extra streams to a file's receiver, each on a
// connection of its own. It returns those it could open by the time ctx
// ends: perhaps none, and the file goes on its OFFER's stream alone.
type LaneOpener func(ctx context.Context, n int) []Stream
