package portmap

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
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
// gateway's own address, no other. The three kinds are searched at once:
// each search waits out SSDP's answer window.
func findIGD(ctx context.Context, gw netip.Addr) (igd, error) {
	type found struct {
		devs []igd
		locs []string
		err  error
	}
	searches := []func() found{
		func() found {
			cs, _, err := internetgateway2.NewWANIPConnection2ClientsCtx(ctx)
			f := found{err: err}
			for _, c := range cs {
				f.devs, f.locs = append(f.devs, c), append(f.locs, c.Location.Hostname())
			}
			return f
		},
		func() found {
			cs, _, err := internetgateway2.NewWANIPConnection1ClientsCtx(ctx)
			f := found{err: err}
			for _, c := range cs {
				f.devs, f.locs = append(f.devs, c), append(f.locs, c.Location.Hostname())
			}
			return f
		},
		func() found {
			cs, _, err := internetgateway2.NewWANPPPConnection1ClientsCtx(ctx)
			f := found{err: err}
			for _, c := range cs {
				f.devs, f.locs = append(f.devs, c), append(f.locs, c.Location.Hostname())
			}
			return f
		},
	}
	results := make([]found, len(searches))
	var wg sync.WaitGroup
	for i, search := range searches {
		wg.Go(func() { results[i] = search() })
	}
	wg.Wait()
	var errs []error
	others := 0
	for _, r := range results { // in order: IGDv2 first
		errs = append(errs, r.err)
		for i, dev := range r.devs {
			if r.locs[i] == gw.String() {
				return dev, nil
			}
			others++
		}
	}
	// A device that is not the gateway is not taken at its word: anyone
	// on the LAN can answer SSDP, and a mapping it claims would name an
	// external address of its choosing as ours, published to our peers.
	if others > 0 {
		return nil, fmt.Errorf("%d UPnP device(s) answered, none at the gateway %s", others, gw)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	return nil, errors.New("no UPnP gateway answered")
}

// soapCode is the UPnP error code in err, or 0.
func soapCode(err error) int {
	var se *soap.SOAPFaultError
	if !errors.As(err, &se) {
		return 0
	}
	return se.Detail.UPnPError.Errorcode
}
