package portmap

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/huin/goupnp/dcps/internetgateway2"
	"github.com/huin/goupnp/soap"
)

// upnpMapper maps with UPnP IGD through github.com/huin/goupnp: it
// finds the router's WAN connection service (IGDv2's WANIPConnection:2,
// IGDv1's WANIPConnection:1, or WANPPPConnection:1 behind a DSL modem)
// by SSDP discovery, and adds a port mapping there. The service found
// is kept for the mapping's renewals and deletion (discovery waits out
// SSDP's answer window, seconds), and forgotten when it fails.
type upnpMapper struct {
	mu  sync.Mutex // guards following
	gw  netip.Addr // the router dev was found for
	dev igd
}

func (*upnpMapper) name() string { return UPnP }

// probe discovers the router's WAN connection service.
func (u *upnpMapper) probe(ctx context.Context, gw, _ netip.Addr) error {
	_, err := u.find(ctx, gw)
	return err
}

// find returns the service found before for gw, or discovers it.
func (u *upnpMapper) find(ctx context.Context, gw netip.Addr) (igd, error) {
	u.mu.Lock()
	dev := u.dev
	if u.gw != gw {
		dev = nil
	}
	u.mu.Unlock()
	if dev != nil {
		return dev, nil
	}
	dev, err := findIGD(ctx, gw)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	u.gw, u.dev = gw, dev
	u.mu.Unlock()
	return dev, nil
}

// forget drops the service found: it failed, and the next attempt
// discovers it again.
func (u *upnpMapper) forget() {
	u.mu.Lock()
	u.dev = nil
	u.mu.Unlock()
}

// igd is what the three WAN connection services have in common.
type igd interface {
	AddPortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string, internalPort uint16, internalClient string, enabled bool, description string, leaseSeconds uint32) error
	DeletePortMappingCtx(ctx context.Context, remoteHost string, externalPort uint16, protocol string) error
	GetExternalIPAddressCtx(ctx context.Context) (string, error)
}

// upnpDescription names our mappings in the router's list.
const upnpDescription = "punchdrop"

// UPnP error codes the mapper answers to (UPnP IGD WANIPConnection).
const (
	upnpConflict      = 718 // the external port is mapped to someone else
	upnpOnlyPermanent = 725 // the router takes only leases of 0 (no expiry)
)

func (u *upnpMapper) add(ctx context.Context, gw netip.Addr, internal netip.AddrPort, life time.Duration) (Mapping, error) {
	dev, err := u.find(ctx, gw)
	if err != nil {
		return Mapping{}, err
	}
	extText, err := dev.GetExternalIPAddressCtx(ctx)
	if err != nil {
		u.forget()
		return Mapping{}, fmt.Errorf("external address: %w", err)
	}
	extIP, err := netip.ParseAddr(extText)
	if err != nil || !extIP.IsValid() || extIP.IsUnspecified() {
		return Mapping{}, fmt.Errorf("the router's external address %q is not usable", extText)
	}
	port, lease := internal.Port(), uint32(life/time.Second)
	for range 3 {
		err = dev.AddPortMappingCtx(ctx, "", port, "UDP", internal.Port(), internal.Addr().String(), true, upnpDescription, lease)
		switch code := soapCode(err); {
		case err == nil:
			granted := time.Duration(lease) * time.Second
			if lease == 0 {
				granted = life // permanent: renewed as if it were not
			}
			return Mapping{Protocol: UPnP, External: netip.AddrPortFrom(extIP, port), Internal: internal, Gateway: gw, Lifetime: granted, Expires: time.Now().Add(granted)}, nil
		case code == upnpOnlyPermanent:
			lease = 0
		case code == upnpConflict:
			port = uint16(32768 + rand.IntN(28000))
		default:
			u.forget()
			return Mapping{}, fmt.Errorf("add mapping: %w", err)
		}
	}
	return Mapping{}, fmt.Errorf("add mapping: %w", err)
}

func (u *upnpMapper) remove(ctx context.Context, m Mapping) error {
	dev, err := u.find(ctx, m.Gateway)
	if err != nil {
		return err
	}
	return dev.DeletePortMappingCtx(ctx, "", m.External.Port(), "UDP")
}

// findIGD discovers the router's WAN connection service: the one on the
// gateway's own address, no other. One SSDP search asks for all three
// kinds at once (each search waits out SSDP's answer window); only the
// gateway's answers are followed to their descriptions. Anyone on the LAN can answer
// SSDP, and a device that is not the gateway is not taken at its word
// (a mapping it claims would name an external address of its choosing
// as ours, published to our peers), nor is its description fetched.
func findIGD(ctx context.Context, gw netip.Addr) (igd, error) {
	locs, others, err := searchGateway(ctx, gw, netip.MustParseAddrPort(ssdpGroup))
	if err != nil {
		return nil, err
	}
	kinds := []func(*url.URL) ([]igd, error){ // in order: IGDv2 first
		func(loc *url.URL) ([]igd, error) {
			cs, err := internetgateway2.NewWANIPConnection2ClientsByURLCtx(ctx, loc)
			return asIGDs(cs), err
		},
		func(loc *url.URL) ([]igd, error) {
			cs, err := internetgateway2.NewWANIPConnection1ClientsByURLCtx(ctx, loc)
			return asIGDs(cs), err
		},
		func(loc *url.URL) ([]igd, error) {
			cs, err := internetgateway2.NewWANPPPConnection1ClientsByURLCtx(ctx, loc)
			return asIGDs(cs), err
		},
	}
	var errs []error
	for _, kind := range kinds {
		for _, loc := range locs {
			devs, err := kind(loc)
			if len(devs) > 0 {
				return devs[0], nil
			}
			errs = append(errs, err)
		}
	}
	switch {
	case len(locs) > 0:
		return nil, fmt.Errorf("the gateway %s answered UPnP but offers no WAN connection service: %w", gw, errors.Join(errs...))
	case others > 0:
		return nil, fmt.Errorf("%d UPnP device(s) answered, none at the gateway %s", others, gw)
	}
	return nil, errors.New("no UPnP gateway answered")
}

// upnpTargets are the SSDP search targets of the WAN connection services.
func upnpTargets() []string {
	return []string{internetgateway2.URN_WANIPConnection_2, internetgateway2.URN_WANIPConnection_1, internetgateway2.URN_WANPPPConnection_1}
}

// SSDP's search (UPnP Device Architecture 1.1, 1.3.2), and what a search
// takes of the answers.
const (
	ssdpGroup = "239.255.255.250:1900" // where searches go
	// ssdpWait is how long a search listens, and its MX (the longest a
	// device may wait before it answers).
	ssdpWait = 2 * time.Second
	// maxSSDPAnswers bounds the gateway's answers a search looks at;
	// answers from other hosts are only counted, up to maxSSDPOthers. A
	// flood of them costs a read each for the answer window, no memory,
	// no log line, and hides none of the gateway's.
	maxSSDPAnswers = 16
	maxSSDPOthers  = 1024
)

// searchGateway asks the LAN for WAN connection services by SSDP (sent
// to dst, SSDP's group but in tests), and returns the description URLs
// the gateway's own answers name (once each), and how many answers came
// from other hosts. An answer from another host is counted, never read.
func searchGateway(ctx context.Context, gw netip.Addr, dst netip.AddrPort) (locs []*url.URL, others int, err error) {
	conn, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return nil, 0, fmt.Errorf("discovery: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	for _, target := range upnpTargets() {
		req := "M-SEARCH * HTTP/1.1\r\nHOST: " + ssdpGroup + "\r\nMAN: \"ssdp:discover\"\r\nMX: " +
			strconv.Itoa(int(ssdpWait/time.Second)) + "\r\nST: " + target + "\r\n\r\n"
		if _, err := conn.WriteToUDPAddrPort([]byte(req), dst); err != nil {
			return nil, 0, fmt.Errorf("discovery: %w", err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(ssdpWait))
	seen := map[string]bool{}
	buf := make([]byte, 2048)
	for answers := 0; answers < maxSSDPAnswers; {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			break // the answer window closed (or ctx ended)
		}
		if from.Addr().Unmap() != gw {
			others = min(others+1, maxSSDPOthers)
			continue
		}
		answers++
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(buf[:n])), nil)
		if err != nil {
			continue
		}
		resp.Body.Close()
		loc, err := resp.Location()
		if err != nil || resp.StatusCode != http.StatusOK || loc.Scheme != "http" || loc.Hostname() != gw.String() || seen[loc.String()] {
			continue
		}
		seen[loc.String()] = true
		locs = append(locs, loc)
	}
	return locs, others, ctx.Err()
}

// asIGDs lists clients of one kind as igds.
func asIGDs[C igd](cs []C) []igd {
	out := make([]igd, len(cs))
	for i, c := range cs {
		out[i] = c
	}
	return out
}

// soapCode is the UPnP error code in err, or 0.
func soapCode(err error) int {
	var se *soap.SOAPFaultError
	if !errors.As(err, &se) {
		return 0
	}
	return se.Detail.UPnPError.Errorcode
}
