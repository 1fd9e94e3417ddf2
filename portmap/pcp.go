package portmap

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// PCP (RFC 6887) and NAT-PMP share the router's port 5351. A MAP request
// asks for the node's internal port; the answer carries the external
// address and the lifetime granted.
const (
	pcpPort       = 5351
	pcpVersion    = 2
	pcpOpAnnounce = 0
	pcpOpMap      = 1
	pcpResponse   = 0x80 // the R bit of the opcode byte
	pcpHeaderLen  = 24
	pcpMapLen     = 36
	pcpMessageLen = pcpHeaderLen + pcpMapLen
	protoUDP      = 17
	// pcpRetry is the first retransmission interval (RFC 6887 8.1.1 says
	// 3 s; the router is on the LAN, so a quarter second is plenty and
	// the whole exchange stays within probeTimeout).
	pcpRetry = 250 * time.Millisecond
)

// Errors of the PCP exchange.
var (
	errPCPMalformed = errors.New("malformed PCP answer")
	errPCPNotAnswer = errors.New("not an answer to our request")
)

// pcpRequest is a MAP request for internal, from client (our address as
// the router sees it), with a fresh nonce.
type pcpRequest struct {
	client   netip.Addr
	internal uint16
	lifetime uint32 // seconds; 0 deletes
	nonce    [12]byte
	external netip.AddrPort // suggested; zero for none
}

func (r pcpRequest) marshal() []byte {
	b := make([]byte, pcpMessageLen)
	b[0], b[1] = pcpVersion, pcpOpMap
	binary.BigEndian.PutUint32(b[4:], r.lifetime)
	ip := r.client.As16()
	copy(b[8:24], ip[:])
	m := b[pcpHeaderLen:]
	copy(m[0:12], r.nonce[:])
	m[12] = protoUDP
	binary.BigEndian.PutUint16(m[16:], r.internal)
	if r.external.IsValid() {
		binary.BigEndian.PutUint16(m[18:], r.external.Port())
		ext := r.external.Addr().As16()
		copy(m[20:36], ext[:])
	}
	return b
}

// pcpAnswer is a router's answer to a MAP request.
type pcpAnswer struct {
	result   uint8
	lifetime uint32
	nonce    [12]byte
	internal uint16
	external netip.AddrPort
}

// parsePCPAnswer decodes a MAP answer. It never panics.
func parsePCPAnswer(b []byte) (pcpAnswer, error) {
	var a pcpAnswer
	if len(b) < pcpMessageLen {
		return a, fmt.Errorf("%w: %d bytes", errPCPMalformed, len(b))
	}
	if b[0] != pcpVersion || b[1] != pcpResponse|pcpOpMap {
		return a, fmt.Errorf("%w: version %d, opcode %#x", errPCPNotAnswer, b[0], b[1])
	}
	a.result = b[3]
	a.lifetime = binary.BigEndian.Uint32(b[4:])
	m := b[pcpHeaderLen:]
	copy(a.nonce[:], m[0:12])
	if m[12] != protoUDP {
		return a, fmt.Errorf("%w: protocol %d", errPCPNotAnswer, m[12])
	}
	a.internal = binary.BigEndian.Uint16(m[16:])
	ip := netip.AddrFrom16([16]byte(m[20:36])).Unmap()
	a.external = netip.AddrPortFrom(ip, binary.BigEndian.Uint16(m[18:]))
	return a, nil
}

// pcpResults names the result codes a router may send (RFC 6887 7.4).
var pcpResults = map[uint8]string{
	1: "unsupported version", 2: "not authorized", 3: "malformed request", 4: "unsupported opcode",
	5: "unsupported option", 6: "malformed option", 7: "network failure", 8: "no resources",
	9: "unsupported protocol", 10: "user exceeded quota", 11: "cannot provide external", 12: "address mismatch",
	13: "excessive remote peers",
}

// pcpMapper maps with PCP. Its nonce is the mapping's for its whole
// life: a router refuses to renew or delete a mapping (NOT_AUTHORIZED)
// for a request whose nonce is not the one that made it (RFC 6887
// 11.3).
type pcpMapper struct {
	nonce [12]byte
}

// newPCPMapper returns a mapper that uses nonce, or a random one if it
// is zero.
func newPCPMapper(nonce [12]byte) pcpMapper {
	if nonce == [12]byte{} {
		rand.Read(nonce[:])
	}
	return pcpMapper{nonce: nonce}
}

func (pcpMapper) name() string { return PCP }

func (p pcpMapper) add(ctx context.Context, gw netip.Addr, internal netip.AddrPort, life time.Duration) (Mapping, error) {
	req := pcpRequest{client: internal.Addr(), internal: internal.Port(), lifetime: uint32(life / time.Second), nonce: p.nonce}
	a, err := pcpExchange(ctx, gw, req)
	if err != nil {
		return Mapping{}, err
	}
	if !a.external.IsValid() || a.external.Port() == 0 || a.lifetime == 0 {
		return Mapping{}, fmt.Errorf("%w: no external address granted", errPCPMalformed)
	}
	granted := time.Duration(a.lifetime) * time.Second
	return Mapping{Protocol: PCP, External: a.external, Internal: internal, Gateway: gw, Lifetime: granted, Expires: time.Now().Add(granted)}, nil
}

func (p pcpMapper) remove(ctx context.Context, m Mapping) error {
	req := pcpRequest{client: m.Internal.Addr(), internal: m.Internal.Port(), lifetime: 0, nonce: p.nonce}
	_, err := pcpExchange(ctx, m.Gateway, req)
	return err
}

// probe sends an ANNOUNCE request (RFC 6887 14.1): a router that speaks
// PCP answers it, and nothing changes there.
func (pcpMapper) probe(ctx context.Context, gw, local netip.Addr) error {
	msg := make([]byte, pcpHeaderLen)
	msg[0], msg[1] = pcpVersion, pcpOpAnnounce
	ip := local.As16()
	copy(msg[8:24], ip[:])
	return pcpRoundTrip(ctx, gw, msg, func(b []byte) (bool, error) {
		if len(b) < pcpHeaderLen || b[0] != pcpVersion || b[1] != pcpResponse|pcpOpAnnounce {
			return false, nil // NAT-PMP's answer, or another request's
		}
		if b[3] != 0 {
			return true, fmt.Errorf("the router refused: %s (PCP result %d)", pcpResults[b[3]], b[3])
		}
		return true, nil
	})
}

// pcpExchange sends req to the router until it answers, and checks the
// answer is ours.
func pcpExchange(ctx context.Context, gw netip.Addr, req pcpRequest) (pcpAnswer, error) {
	var a pcpAnswer
	err := pcpRoundTrip(ctx, gw, req.marshal(), func(b []byte) (bool, error) {
		got, err := parsePCPAnswer(b)
		if err != nil || got.nonce != req.nonce {
			return false, nil // NAT-PMP's answer, or another request's
		}
		a = got
		if a.result != 0 {
			return true, fmt.Errorf("the router refused: %s (PCP result %d)", pcpResults[a.result], a.result)
		}
		return true, nil
	})
	return a, err
}

// pcpRoundTrip sends msg to the router (doubling the retransmission
// interval) until answer takes an answer (done) or ctx ends.
func pcpRoundTrip(ctx context.Context, gw netip.Addr, msg []byte, answer func([]byte) (done bool, err error)) error {
	conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(gw, pcpPort)))
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 1100) // RFC 6887: messages are at most 1100 bytes
	for wait := pcpRetry; ; wait *= 2 {
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		conn.SetReadDeadline(time.Now().Add(wait))
		for {
			n, err := conn.Read(buf)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("nothing answers on the router's port %d", pcpPort)
			}
			if err != nil {
				break // no answer yet: send again
			}
			if done, err := answer(buf[:n]); done {
				return err
			}
		}
	}
}
