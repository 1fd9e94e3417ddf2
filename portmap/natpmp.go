package portmap

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	natpmp "github.com/jackpal/go-nat-pmp"
)

// natpmpMapper maps with NAT-PMP (RFC 6886) through
// github.com/jackpal/go-nat-pmp.
type natpmpMapper struct{}

func (natpmpMapper) name() string { return NATPMP }

// probe asks for the router's external address, which changes nothing
// there.
func (natpmpMapper) probe(ctx context.Context, gw, _ netip.Addr) error {
	return withContext(ctx, func() error {
		_, err := client(ctx, gw).GetExternalAddress()
		return err
	})
}

func (natpmpMapper) add(ctx context.Context, gw netip.Addr, internal netip.AddrPort, life time.Duration) (Mapping, error) {
	c := client(ctx, gw)
	var ext *natpmp.GetExternalAddressResult
	var res *natpmp.AddPortMappingResult
	err := withContext(ctx, func() (err error) {
		if ext, err = c.GetExternalAddress(); err != nil {
			return err
		}
		res, err = c.AddPortMappingWithDuration("udp", int(internal.Port()), int(internal.Port()), life)
		return err
	})
	if err != nil {
		return Mapping{}, err
	}
	if res.MappedExternalPort == 0 || res.PortMappingLifetimeInSeconds == 0 {
		return Mapping{}, fmt.Errorf("the router granted no port")
	}
	granted := time.Duration(res.PortMappingLifetimeInSeconds) * time.Second
	external := netip.AddrPortFrom(netip.AddrFrom4(ext.ExternalIPAddress), res.MappedExternalPort)
	return Mapping{Protocol: NATPMP, External: external, Internal: internal, Gateway: gw, Lifetime: granted, Expires: time.Now().Add(granted)}, nil
}

func (natpmpMapper) remove(ctx context.Context, m Mapping) error {
	return withContext(ctx, func() error {
		_, err := client(ctx, m.Gateway).AddPortMapping("udp", int(m.Internal.Port()), 0, 0)
		return err
	})
}

// client is a NAT-PMP client whose retransmissions stop by ctx's
// deadline (the library doubles from 250 ms for up to a minute).
func client(ctx context.Context, gw netip.Addr) *natpmp.Client {
	timeout := probeTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	return natpmp.NewClientWithTimeout(net.IP(gw.AsSlice()), timeout)
}

// withContext runs fn, which has no context of its own, and returns when
// it does or ctx ends; fn runs on for at most its own timeout.
func withContext(ctx context.Context, fn func() error) error {
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
