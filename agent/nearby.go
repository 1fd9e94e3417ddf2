package agent

import (
	"context"

	"github.com/punchdrop/punchdrop/lan"
	"github.com/punchdrop/punchdrop/session"
)

// startLAN starts announcing the node to its peers on the LAN, and
// hearing them, when the config says so; the lan.Service runs until ctx
// ends. Peers it hears of are tried and remembered like those found on
// the DHT.
func (a *Agent) startLAN(ctx context.Context) (run func()) {
	if !a.cfg.LANDiscovery {
		a.log.Info("LAN discovery is off (lan_discovery = false)")
		return func() {}
	}
	svc, err := lan.New(lan.Config{Key: a.ident.Key, Logger: a.log, Found: a.learned})
	if err != nil {
		a.log.Warn("LAN discovery", "err", err)
		return func() {}
	}
	a.lan = svc
	a.updateLANPeers()
	svc.Announce(a.node.LocalCandidates())
	return func() {
		if err := svc.Run(ctx); err != nil {
			a.log.Warn("LAN discovery cannot run: peers on this LAN are found only through the internet", "err", err)
		}
	}
}

// updateLANPeers tells LAN discovery who the peers are now.
func (a *Agent) updateLANPeers() {
	if a.lan == nil {
		return
	}
	var ids []session.NodeID
	for _, st := range a.node.Peers() {
		ids = append(ids, st.ID)
	}
	a.lan.SetPeers(ids)
}
