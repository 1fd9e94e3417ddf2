package nat

import (
	"net"
	"strings"
	"testing"
)

func TestTuneSocketBuffers(t *testing.T) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	before, err := TuneSocketBuffers(conn)
	if err != nil {
		t.Fatal(err)
	}
	if before.Receive <= 0 || before.Send <= 0 {
		t.Fatalf("buffers %+v", before)
	}
	wantLimited := before.Receive < WantedSocketBuffer || before.Send < WantedSocketBuffer
	if before.Limited != wantLimited {
		t.Fatalf("Limited = %v for %+v", before.Limited, before)
	}
	if advice := before.Advice(); (advice != "") != before.Limited || (before.Limited && !strings.Contains(advice, "rmem_max")) {
		t.Fatalf("advice %q for %+v", advice, before)
	}
	t.Logf("UDP buffers: %+v", before)
}
