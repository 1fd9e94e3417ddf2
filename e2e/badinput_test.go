package e2e

import (
	"crypto/rand"
	"encoding/binary"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/lab"
)

// junkTargetEnv tells the helper process where to send junk.
const junkTargetEnv = "PUNCHDROP_JUNK_TARGET"

// TestHelperSendJunk is not a test: TestGarbageDatagrams runs the test
// binary inside a lab host with this test selected, to send junk from there.
func TestHelperSendJunk(t *testing.T) {
	target := os.Getenv(junkTargetEnv)
	if target == "" {
		t.Skip("helper process for TestGarbageDatagrams")
	}
	conn, err := net.Dial("udp4", target)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	stunLike := func(n int) []byte { // STUN header with the magic cookie, junk after
		b := random(max(n, 20))
		b[0], b[1] = 0x01, 0x01
		binary.BigEndian.PutUint16(b[2:], uint16(len(b)-20))
		binary.BigEndian.PutUint32(b[4:], 0x2112A442)
		return b
	}
	probeLike := func(n int) []byte { // our probe magic, junk after
		b := random(max(n, 4))
		copy(b, []byte{0x1f, 'P', 'D', 0x02})
		return b
	}
	quicLike := func(n int) []byte { // a long-header QUIC first byte, junk after
		b := random(max(n, 1))
		b[0] |= 0xc0
		return b
	}
	for i := range 3000 {
		var b []byte
		switch i % 6 {
		case 0:
			b = random(i % 1500)
		case 1:
			b = stunLike(i % 600)
		case 2:
			b = probeLike(i % 300)
		case 3:
			b = quicLike(i % 1400)
		case 4:
			b = nil // empty datagram
		case 5:
			b = random(60000) // oversized
		}
		conn.Write(b)
		if i%100 == 0 {
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestGarbageDatagrams(t *testing.T) {
	t.Parallel()
	l, a, b := twoSites(t, lab.None, lab.None)
	connectPair(t, a, b)
	waitPeer(t, a, b.nodeID(), connectTimeout, "connect", connected)
	attacker := l.AddSite(lab.None).AddHost()
	info, err := a.id()
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	cmd := attacker.Command(t.Context(), os.Args[0], "-test.run=^TestHelperSendJunk$", "-test.count=1")
	cmd.Env = append(os.Environ(), junkTargetEnv+"="+info.PublicAddr)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("junk sender: %v\n%s", err, out)
	}
	elapsed := time.Since(started)
	// Still alive and still working.
	select {
	case <-a.done:
		t.Fatal("agent died from junk datagrams")
	default:
	}
	if p := a.peer(b.nodeID()); p.State != control.StateConnected {
		t.Fatalf("session lost to junk: %+v", p)
	}
	exchangeMessages(t, a, b, "after junk")
	// Junk is logged at debug, rate-limited: a handful of lines, not 3000.
	log, _ := os.ReadFile(a.home + "/punchdrop.log")
	n := strings.Count(string(log), "dropped datagram")
	if n == 0 || n > 10+int(elapsed.Seconds())*2 {
		t.Fatalf("%d 'dropped datagram' log lines for 3000 junk datagrams in %s; want a few, rate-limited", n, elapsed)
	}
	if p := a.peers(); len(p) != 1 {
		t.Fatalf("junk created peers or requests: %+v", p)
	}
}

func TestPendingRequestAccept(t *testing.T) {
	t.Parallel()
	_, a, b := twoSites(t, lab.PortRestricted, lab.FullCone)
	// Only alice pastes bob's string; bob sees a pending request.
	a.mustCLI("connect", b.connString())
	aliceID := a.nodeID()
	p := waitPeer(t, b, aliceID, connectTimeout, "pending request", func(p control.PeerInfo) bool {
		return p.State == control.StatePending
	})
	if p.Name != "alice" {
		t.Fatalf("pending request = %+v", p)
	}
	if _, err := b.cli("accept", "ali"); err == nil || !strings.Contains(err.Error(), "no peer matches") {
		t.Fatalf("accept by a partial name = %v; want no match", err)
	}
	b.mustCLI("accept", "alice")
	for _, side := range [][2]*agentProc{{a, b}, {b, a}} {
		waitPeer(t, side[0], side[1].nodeID(), connectTimeout, "connect after accept", connected)
	}
	exchangeMessages(t, a, b, "accepted")
}
