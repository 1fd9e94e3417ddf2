package session

import (
	"strings"
	"testing"

	"github.com/punchdrop/punchdrop/simnet"
)

func TestListenUDPBuffers(t *testing.T) {
	conn, err := ListenUDP(0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, err := ReadSocketBuffers(conn)
	if err != nil {
		t.Fatal(err)
	}
	if got.Receive <= 0 || got.Send <= 0 {
		t.Fatalf("buffers %+v", got)
	}
	wantLimited := got.Receive < WantedSocketBuffer || got.Send < WantedSocketBuffer
	if got.Limited != wantLimited {
		t.Fatalf("Limited = %v for %+v", got.Limited, got)
	}
	if advice := got.Advice(); (advice != "") != got.Limited || (got.Limited && !strings.Contains(advice, "rmem_max")) {
		t.Fatalf("advice %q for %+v", advice, got)
	}
	t.Logf("UDP buffers: %+v", got)
}

func TestSimulatedSocketHasNoBuffers(t *testing.T) {
	conn, err := simnet.New(simnet.Config{}).AddSite(nil).AddHost().Listen(0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got, err := ReadSocketBuffers(conn); err != nil || got != (SocketBuffers{}) {
		t.Fatalf("ReadSocketBuffers = %+v, %v; want nothing", got, err)
	}
}
