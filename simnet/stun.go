package simnet

import (
	"net"
	"net/netip"
	"sync"

	"github.com/pion/stun/v3"
)

// STUN server ports, as coturn uses them for RFC 5780.
const (
	stunPort    = 3478
	stunAltPort = 3479
)

// STUNServer answers STUN Binding requests on the simulated internet, on
// two addresses and two ports, so the RFC 5780 tests (OTHER-ADDRESS,
// CHANGE-REQUEST) run against it as against coturn in the lab.
type STUNServer struct {
	conns [2][2]*Conn // by address, then port
	wg    sync.WaitGroup
}

// AddSTUNServer starts a STUN server on two new public hosts. Close stops it.
func (n *Net) AddSTUNServer() (*STUNServer, error) {
	site := n.AddSite(nil)
	srv := &STUNServer{}
	for i := range 2 {
		h := site.AddHost()
		for j, port := range []uint16{stunPort, stunAltPort} {
			c, err := h.Listen(port)
			if err != nil {
				srv.Close()
				return nil, err
			}
			srv.conns[i][j] = c
		}
	}
	for i := range 2 {
		for j := range 2 {
			srv.wg.Go(func() { srv.serve(i, j) })
		}
	}
	return srv, nil
}

// Addr returns the server's primary address.
func (s *STUNServer) Addr() netip.AddrPort { return s.conns[0][0].AddrPort() }

// Close stops the server and waits for it.
func (s *STUNServer) Close() {
	for _, row := range s.conns {
		for _, c := range row {
			if c != nil {
				c.Close()
			}
		}
	}
	s.wg.Wait()
}

// Flags of CHANGE-REQUEST (RFC 5780 §7.2).
const (
	changeIP   = 0x04
	changePort = 0x02
)

// serve answers requests arriving at address i, port j.
func (s *STUNServer) serve(i, j int) {
	c := s.conns[i][j]
	buf := make([]byte, 1500)
	for {
		size, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		req := &stun.Message{Raw: append([]byte(nil), buf[:size]...)}
		if req.Decode() != nil || req.Type != stun.BindingRequest {
			continue
		}
		ri, rj := i, j // who answers
		if v, err := req.Get(stun.AttrChangeRequest); err == nil && len(v) == 4 {
			if v[3]&changeIP != 0 {
				ri = 1 - i
			}
			if v[3]&changePort != 0 {
				rj = 1 - j
			}
		}
		src, _ := addrPortOf(from)
		resp, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: src.Addr().AsSlice(), Port: int(src.Port())},
			addrAttr{stun.AttrOtherAddress, s.conns[1-i][1-j].AddrPort()},
			addrAttr{stun.AttrResponseOrigin, s.conns[ri][rj].AddrPort()},
			stun.Fingerprint)
		if err != nil {
			continue
		}
		s.conns[ri][rj].WriteTo(resp.Raw, net.UDPAddrFromAddrPort(src))
	}
}

// addrAttr adds an address attribute in MAPPED-ADDRESS form.
type addrAttr struct {
	t stun.AttrType
	a netip.AddrPort
}

func (a addrAttr) AddTo(m *stun.Message) error {
	return (&stun.MappedAddress{IP: a.a.Addr().AsSlice(), Port: int(a.a.Port())}).AddToAs(m, a.t)
}
