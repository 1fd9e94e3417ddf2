package main

import (
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/punchdrop/punchdrop/agent"
)

// agentMemoryLimit is the agent's soft memory limit (GOMEMLIMIT sets
// another). Without one the heap grows to twice what is live between
// collections: moving 512 MiB over 16 lanes at RTT 150 ms the sender
// peaked at 79 MiB RSS; with this limit both sides stayed at 52 MiB,
// just as fast (BenchmarkRealPathsMemory; issue 16 asks for at most
// 64 MiB). It is soft: past it the collector runs more often, taking
// at most half the CPU, and never fails an allocation.
const agentMemoryLimit = 40 << 20

func newAgentCmd(g *globals) *cobra.Command {
	opts := agent.Options{Port: -1}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the agent in the foreground (stop it with Ctrl-C)",
		Long: `Run the punchdrop agent in the foreground. It learns this machine's
public address with STUN, keeps connections to your peers, and serves the
commands of this CLI over a unix socket. Logs go to stderr and to the log
file. Ctrl-C or SIGTERM stops it cleanly.

It also publishes where it can be reached on the BitTorrent DHT, encrypted
for holders of its connection string only, and looks there for peers that
cannot be reached where they were (config keys dht and dht_bootstrap).

--name and --port are saved to the config file; --stun, --relay and
--dht-bootstrap apply to this run (the config's stun_servers, relays and
dht_bootstrap are kept for the next).`,
		Example: `  punchdrop agent --name alice
  punchdrop agent --home /tmp/pd-test --stun 198.18.0.2:3478 --dht-bootstrap none
  punchdrop agent --relay 'turns:alice:secret@relay.example.com:443'
  punchdrop agent --dht-bootstrap 198.18.0.240:6881 --dht-bootstrap 198.18.0.241:6881`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(agentMemoryLimit)
			}
			opts.Home = g.home
			opts.Stderr = cmd.ErrOrStderr()
			return agent.Run(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "display name your peers see (saved)")
	cmd.Flags().IntVar(&opts.Port, "port", -1, "UDP `PORT` to listen on, 0 for random (saved; default: the saved port)")
	cmd.Flags().StringArrayVar(&opts.STUNServers, "stun", nil, "STUN server `HOST:PORT` to use instead of the configured ones (repeatable)")
	cmd.Flags().StringArrayVar(&opts.Relays, "relay", nil, "TURN relay `URL` to use instead of the configured ones (repeatable): turn:USER:PASS@HOST[:PORT][?transport=tcp], turns:…, or ?secret=S")
	cmd.Flags().StringArrayVar(&opts.DHTBootstrap, "dht-bootstrap", nil,
		"join the DHT through the node at `ADDR`, host:port, instead of the configured ones (repeatable; \""+agent.NoDHT+"\" turns the DHT off)")
	return cmd
}
