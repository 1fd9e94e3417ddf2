//go:build !linux

package portmap

import (
	"errors"
	"net/netip"
)

// defaultRoute is not known here yet: port mapping needs the router's
// address (Config.Gateway).
func defaultRoute() (gw, local netip.Addr, err error) {
	return gw, local, errors.New("finding the router is implemented on Linux only")
}
