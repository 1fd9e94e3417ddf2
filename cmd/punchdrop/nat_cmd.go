package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/punchdrop/punchdrop/agent"
	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/nat"
	"github.com/punchdrop/punchdrop/session"
)

// natTimeout bounds the one-shot NAT check; the slowest part is waiting
// out filtering probes that a strict NAT never lets through.
const natTimeout = 15 * time.Second

func newNATCmd(g *globals) *cobra.Command {
	var asJSON bool
	var servers, bootstrap []string
	cmd := &cobra.Command{
		Use:   "nat",
		Short: "Check your public address, what kind of NAT you are behind, and the DHT",
		Long: `Ask STUN servers for this machine's public address and classify the NAT in
front of it (RFC 4787 words): mapping and filtering are each
endpoint-independent, address-dependent, address-and-port-dependent, or
unknown. Works without a running agent; it uses a fresh UDP socket.

It also says whether the DHT, where the agent publishes where it can be
reached and looks for peers that moved, answers, and how many DHT nodes
did: a running agent's own DHT node says; without one (or with
--dht-bootstrap), a short-lived node joins through the configured
bootstrap nodes (at most 10 s).`,
		Example: `  punchdrop nat
  punchdrop nat --json --stun 198.18.0.2:3478 --dht-bootstrap 198.18.0.240:6881`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := agent.LoadConfig(g.paths().Config)
			if err != nil {
				return err
			}
			if len(servers) == 0 {
				servers = cfg.STUNServers
			}
			if len(servers) == 0 {
				servers = nat.DefaultSTUNServers()
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), natTimeout)
			defer cancel()
			dhtDone := make(chan *control.DHTInfo, 1)
			go func() { dhtDone <- checkDHT(ctx, g, cfg, bootstrap) }()
			report, buffers, err := classifyOnce(ctx, servers)
			if err != nil {
				return err
			}
			info := agent.NATInfo(report, buffers)
			info.DHT = <-dhtDone
			if asJSON {
				return printJSON(cmd.OutOrStdout(), info)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "public address  %s\nmapping         %s\nfiltering       %s\nudp buffers     %d KiB receive, %d KiB send\ndht             %s\n\n%s\n",
				info.PublicAddr, info.Mapping, info.Filtering, buffers.Receive>>10, buffers.Send>>10, info.DHT.Summary, info.Summary)
			if advice := buffers.Advice(); advice != "" {
				fmt.Fprintf(out, "Note: %s\n", advice)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().StringArrayVar(&servers, "stun", nil, "STUN server `HOST:PORT` to ask (repeatable; default: the configured ones)")
	cmd.Flags().StringArrayVar(&bootstrap, "dht-bootstrap", nil,
		"check the DHT through the node at `ADDR`, host:port (repeatable; \""+agent.NoDHT+"\": skip the DHT; default: ask the agent, else the configured ones)")
	return cmd
}

// checkDHT says whether the DHT answers: the running agent's DHT node
// says, unless bootstrap nodes are given; else a short-lived node joins
// through them, or the configured ones.
func checkDHT(ctx context.Context, g *globals, cfg agent.Config, bootstrap []string) *control.DHTInfo {
	if len(bootstrap) == 0 {
		if info, err := g.client().NAT(ctx); err == nil && info.DHT != nil {
			return info.DHT
		}
	}
	info, err := agent.CheckDHT(ctx, agent.DHTBootstrapFor(cfg, bootstrap))
	if err != nil {
		return &control.DHTInfo{Enabled: true, Bootstrap: bootstrap, Summary: "cannot check: " + err.Error()}
	}
	return info
}

// classifyOnce runs NAT classification on a fresh socket and reports
// the buffers the OS gave it.
func classifyOnce(ctx context.Context, servers []string) (nat.Report, session.SocketBuffers, error) {
	conn, err := session.ListenUDP(0)
	if err != nil {
		return nat.Report{}, session.SocketBuffers{}, err
	}
	defer conn.Close()
	buffers, err := session.ReadSocketBuffers(conn)
	if err != nil {
		return nat.Report{}, buffers, err
	}
	report, err := nat.ClassifyOnce(ctx, conn, servers)
	return report, buffers, err
}
