package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/punchdrop/punchdrop/agent/finder"
	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/dht"
)

// dhtOff is the DHTInfo of an agent or a check with the DHT off.
func dhtOff() *control.DHTInfo {
	return &control.DHTInfo{Summary: "off (dht = false in the config, or --dht-bootstrap " + NoDHT + ")"}
}

// dhtInfoOf describes a running finder.Service.
func dhtInfoOf(st finder.Status) *control.DHTInfo {
	info := &control.DHTInfo{Enabled: true, Bootstrap: st.Bootstrap}
	if st.Running {
		since := st.Started.UTC().Truncate(time.Second)
		info.Since = &since
		fillDHTNode(info, st.Node)
	}
	if p := st.Publish; !p.At.IsZero() {
		info.Publish = &control.PublishInfo{At: p.At.UTC().Truncate(time.Second), Seq: p.Seq, Candidates: p.Candidates, HardNAT: p.HardNAT,
			Stored: p.Stored, TookMs: p.Took.Milliseconds(), Error: p.Err}
	}
	info.Summary = dhtSummary(info)
	return info
}

// fillDHTNode fills in what a DHT node's figures say.
func fillDHTNode(info *control.DHTInfo, s dht.Stats) {
	info.Nodes = s.Nodes
	info.Sent = control.Traffic{Packets: s.Sent.Packets, Bytes: s.Sent.Bytes}
	info.Received = control.Traffic{Packets: s.Received.Packets, Bytes: s.Received.Bytes}
	if op := s.LastOp; op.Op != "" {
		reachable := op.Answered > 0
		info.Reachable, info.LastOp, info.Answered, info.Queried = &reachable, op.Op, op.Answered, op.Queried
	}
}

// dhtSummary says in words whether the DHT answers.
func dhtSummary(info *control.DHTInfo) string {
	switch {
	case !info.Enabled:
		return dhtOff().Summary
	case info.Reachable == nil:
		return "joining the DHT…"
	case !*info.Reachable && info.Queried == 0:
		return "unreachable: no DHT node answered; peers that move cannot be found until one does"
	case !*info.Reachable:
		return fmt.Sprintf("unreachable: none of %d DHT nodes asked answered; peers that move cannot be found until one does", info.Queried)
	}
	s := fmt.Sprintf("reachable: %d of %d DHT nodes answered the last %s", info.Answered, info.Queried, info.LastOp)
	if p := info.Publish; p != nil && p.Error == "" {
		s += fmt.Sprintf("; this node's record is on %d of them", p.Stored)
		if p.HardNAT {
			s += ", saying its NAT maps a new port per destination (peers try birthday probing)"
		}
	}
	return s
}

// dhtCheckTimeout bounds CheckDHT: joining takes a second or two on the
// mainline DHT, and a bootstrap node that has not answered in 10 s
// (the library asks each a few times, 2 s apart) will not.
const dhtCheckTimeout = 10 * time.Second

// CheckDHT joins the DHT through bootstrap with a short-lived read-only
// node and says whether it answers, for "punchdrop nat" without an agent.
// A nil or empty bootstrap, or one holding NoDHT, means the DHT is off.
func CheckDHT(ctx context.Context, bootstrap []string) (*control.DHTInfo, error) {
	if len(bootstrap) == 0 || slices.Contains(bootstrap, NoDHT) {
		return dhtOff(), nil
	}
	node, err := dht.New(dht.Config{Bootstrap: bootstrap, ReadOnly: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	defer node.Close()
	ctx, cancel := context.WithTimeout(ctx, dhtCheckTimeout)
	defer cancel()
	info := &control.DHTInfo{Enabled: true, Bootstrap: bootstrap}
	select {
	case <-node.Bootstrapped():
		fillDHTNode(info, node.Stats())
	case <-ctx.Done():
		// Counted as a bootstrap nobody answered.
		fillDHTNode(info, node.Stats())
		reachable := false
		info.Reachable, info.LastOp = &reachable, "bootstrap"
	}
	info.Summary = dhtSummary(info)
	return info, nil
}

// DHTBootstrapFor is what "punchdrop nat" checks: the nodes an agent with
// cfg and --dht-bootstrap override would join through, nil if it would
// not.
func DHTBootstrapFor(cfg Config, override []string) []string { return dhtBootstrap(cfg, override) }
