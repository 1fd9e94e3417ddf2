package agent

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/nat"
	"github.com/punchdrop/punchdrop/portmap"
	"github.com/punchdrop/punchdrop/safetext"
	"github.com/punchdrop/punchdrop/session"
)

// portMapping keeps the node's UDP port mapped on the router while
// port_mapping is on (a portmap.Keeper): the mapped address is one of
// the node's own candidates, and the mapping is deleted when the agent
// stops or the key is turned off. Its methods are safe on a nil one.
type portMapping struct {
	keeper  *portmap.Keeper
	refresh func() // asks the router again: keeper.Refresh
	cancel  context.CancelFunc
	done    chan struct{} // closed once the keeper deleted its mapping

	mu      sync.Mutex // guards following
	lan     []netip.AddrPort
	public  netip.Addr // the public IP STUN saw last
	started bool       // the node reported its candidates once
}

// startPortMapping maps node's port until ctx ends or stop is called,
// offering the mapping to the node's peers and calling changed after
// each change (the NAT view shows it).
func startPortMapping(ctx context.Context, node *session.Node, ident session.Identity, log *slog.Logger, changed func()) *portMapping {
	client := portmap.New(portmap.Config{Port: node.Port(), PCPNonce: pcpNonce(ident), Logger: log})
	pm := &portMapping{done: make(chan struct{})}
	pm.keeper = portmap.NewKeeper(client, func(m portmap.Mapping) {
		node.SetMapped(m.External)
		changed()
	})
	pm.refresh = pm.keeper.Refresh
	ctx, pm.cancel = context.WithCancel(ctx)
	go func() {
		defer close(pm.done)
		pm.keeper.Run(ctx)
		node.SetMapped(netip.AddrPort{})
	}()
	return pm
}

// pcpNonce is the node's PCP mapping nonce: secret (derived from its
// private key, so no other host on the LAN can delete or take over the
// mapping) and the same on every start, so that an agent that crashed
// can renew or delete the mapping it left behind rather than be refused
// until it expires.
func pcpNonce(ident session.Identity) [12]byte {
	h := sha256.New()
	h.Write([]byte("punchdrop PCP mapping nonce\x00"))
	h.Write(ident.Key.Seed())
	return [12]byte(h.Sum(nil))
}

// stop deletes the mapping and waits until it is gone (bounded by the
// keeper's own deletion timeout).
func (pm *portMapping) stop() {
	if pm == nil {
		return
	}
	pm.cancel()
	<-pm.done
}

// localCandidates hears the node's own candidates: when its LAN
// addresses change, the network did, and the router is asked again.
func (pm *portMapping) localCandidates(cands []session.Candidate) {
	if pm == nil {
		return
	}
	var lan []netip.AddrPort
	for _, c := range cands {
		if c.Kind == session.PathLAN {
			lan = append(lan, c.Addr)
		}
	}
	pm.mu.Lock()
	changed := pm.started && !slices.Equal(lan, pm.lan)
	pm.lan, pm.started = lan, true
	pm.mu.Unlock()
	if changed {
		pm.refresh()
	}
}

// natChanged hears a new NAT report: a new public IP address means a
// new network (or a router that restarted and forgot its mappings). A
// new port alone does not: a symmetric NAT picks one per destination.
func (pm *portMapping) natChanged(r nat.Report) {
	if pm == nil {
		return
	}
	ip := r.PublicAddr.Addr()
	pm.mu.Lock()
	changed := pm.public.IsValid() && ip.IsValid() && ip != pm.public
	if ip.IsValid() {
		pm.public = ip
	}
	pm.mu.Unlock()
	if changed {
		pm.refresh()
	}
}

// info describes the mapping for the NAT view; nil when port mapping is
// off.
func (pm *portMapping) info() *control.PortMappingInfo {
	if pm == nil {
		return nil
	}
	m, err := pm.keeper.Status()
	switch {
	case m.External.IsValid():
		return &control.PortMappingInfo{Protocol: m.Protocol, External: m.External.String()}
	case err != nil && !errors.Is(err, context.Canceled):
		return &control.PortMappingInfo{Error: foreignText(err)}
	default:
		return &control.PortMappingInfo{Error: "asking the router…"}
	}
}

// maxForeignText bounds what the agent passes on of text another machine
// wrote (a router's fault string, a relay server's reason).
const maxForeignText = 300

// foreignText is err's text as the agent passes it on: one line, every
// character a terminal could take for a command escaped, and clipped.
func foreignText(err error) string {
	return safetext.Clip(safetext.Line(err.Error()), maxForeignText)
}
