package portmap

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestSearchGatewayHearsOnlyTheGateway: the gateway (127.0.0.1) answers
// a search with its description's URL, while another host on the LAN
// (127.0.0.2) floods the searcher with answers naming itself and the
// gateway. Only the gateway's own answers count, each URL once; the
// flood is counted up to its bound and never read.
func TestSearchGatewayHearsOnlyTheGateway(t *testing.T) {
	gateway, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer gateway.Close()
	rogue, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	answer := func(location string) []byte {
		return []byte("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nST: " + upnpTargets()[0] +
			"\r\nUSN: uuid:x\r\nEXT:\r\nLOCATION: " + location + "\r\n\r\n")
	}
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := gateway.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if !strings.HasPrefix(string(buf[:n]), "M-SEARCH * HTTP/1.1\r\n") {
				continue
			}
			for i := range 2 * maxSSDPOthers {
				rogue.WriteToUDPAddrPort(answer(fmt.Sprintf("http://127.0.0.%d:5000/rootDesc.xml", 1+i%2)), from)
			}
			gateway.WriteToUDPAddrPort(answer("http://127.0.0.1:5000/rootDesc.xml"), from)
			gateway.WriteToUDPAddrPort(answer("http://127.0.0.1:5000/rootDesc.xml"), from)  // the same service again
			gateway.WriteToUDPAddrPort(answer("http://192.0.2.9:5000/elsewhere.xml"), from) // not on the gateway
		}
	}()
	start := time.Now()
	locs, others, err := searchGateway(t.Context(), netip.MustParseAddr("127.0.0.1"), gateway.LocalAddr().(*net.UDPAddr).AddrPort())
	if err != nil {
		t.Fatal(err)
	}
	if len(locs) != 1 || locs[0].String() != "http://127.0.0.1:5000/rootDesc.xml" {
		t.Errorf("locations %v, want only the gateway's, once", locs)
	}
	if others == 0 || others > maxSSDPOthers {
		t.Errorf("%d answers from other hosts counted, want 1..%d", others, maxSSDPOthers)
	}
	t.Logf("%d other answers counted; search took %s", others, time.Since(start).Round(time.Millisecond))
}
