package nat

import (
	"context"
	"net"
	"time"

	"github.com/pion/stun/v3"
)

// ClassifyOnce runs Classify from conn, a socket nothing else reads, with
// a reader of its own that feeds the STUN client and stops before
// ClassifyOnce returns; it does not close conn. It is for a one-shot check
// (`punchdrop nat`): a fresh socket has no NAT state that a busy one
// might have left, which would skew the filtering tests.
func ClassifyOnce(ctx context.Context, conn net.PacketConn, servers []string) (Report, error) {
	client := NewSTUNClient(conn)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, maxSTUNMessage)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return // closed, or the deadline below
			}
			if stun.IsMessage(buf[:n]) {
				client.HandleSTUN(buf[:n], from)
			}
		}
	}()
	report, err := Classify(ctx, client, addrPortOf(conn.LocalAddr()), servers)
	conn.SetReadDeadline(time.Now())
	<-done
	conn.SetReadDeadline(time.Time{})
	return report, err
}
