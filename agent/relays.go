package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/relay"
	"github.com/punchdrop/punchdrop/session"
)

// parseRelays reads relay URLs. A relay named twice (the same server,
// user and transport) is an error: the node holds one allocation each.
func parseRelays(urls []string) ([]relay.Server, error) {
	var out []relay.Server
	seen := map[string]bool{}
	for _, u := range urls {
		srv, err := relay.ParseURL(u)
		if err != nil {
			return nil, err
		}
		if seen[srv.String()] {
			return nil, fmt.Errorf("%s is listed twice", srv)
		}
		seen[srv.String()] = true
		out = append(out, srv)
	}
	return out, nil
}

// relays keeps the node's relay allocations: a relay.Keeper per
// configured relay, whose allocations the node runs on.
type relays struct {
	keepers []*relay.Keeper
}

// newRelays prepares keepers for servers that hand their allocations to
// node, and calls changed after each change (the NAT view shows them).
func newRelays(servers []relay.Server, node *session.Node, log *slog.Logger, changed func()) *relays {
	r := &relays{}
	for _, srv := range servers {
		name := srv.String()
		r.keepers = append(r.keepers, relay.NewKeeper(srv, relay.Options{Logger: log}, func(a *relay.Allocation) {
			var conn session.RelayConn
			if a != nil { // a nil *Allocation is not a nil RelayConn
				conn = a
			}
			if err := node.SetRelay(name, conn); err != nil {
				log.Error("use relay allocation", "relay", name, "err", err)
			}
			changed()
		}))
	}
	return r
}

// run keeps the allocations until ctx ends.
func (r *relays) run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, k := range r.keepers {
		wg.Go(func() { k.Run(ctx) })
	}
	wg.Wait()
}

// recheck asks every keeper to check its allocation now: the network
// changed.
func (r *relays) recheck() {
	for _, k := range r.keepers {
		k.Recheck()
	}
}

// info describes each relay for the NAT view: its allocation, or why it
// has none.
func (r *relays) info() []control.RelayInfo {
	return relayInfo(r.states())
}

func (r *relays) states() []relay.State {
	out := make([]relay.State, len(r.keepers))
	for i, k := range r.keepers {
		out[i] = k.State()
	}
	return out
}

// relayInfo converts relay states for the control API.
func relayInfo(states []relay.State) []control.RelayInfo {
	var out []control.RelayInfo
	for _, st := range states {
		ri := control.RelayInfo{URL: st.Server.String()}
		switch {
		case st.Relayed.IsValid():
			ri.Relayed = st.Relayed.String()
		case st.Err != nil:
			// The line names the relay already.
			ri.Error = strings.TrimPrefix(foreignText(st.Err), "relay "+ri.URL+": ")
		default:
			ri.Error = "allocating…"
		}
		out = append(out, ri)
	}
	return out
}

// RelayInfo tries each relay once, in parallel, within relay's own time
// limit, and describes the result: for `punchdrop nat` without an agent.
func RelayInfo(ctx context.Context, urls []string) ([]control.RelayInfo, error) {
	servers, err := parseRelays(urls)
	if err != nil {
		return nil, err
	}
	states := make([]relay.State, len(servers))
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Go(func() {
			states[i].Server = srv
			a, err := relay.Allocate(ctx, srv, relay.Options{Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				states[i].Err = err
				return
			}
			states[i].Relayed = a.Relayed
			a.Close()
		})
	}
	wg.Wait()
	return relayInfo(states), nil
}
