package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/punchdrop/punchdrop/agent"
	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/nat"
	"github.com/punchdrop/punchdrop/portmap"
	"github.com/punchdrop/punchdrop/safetext"
	"github.com/punchdrop/punchdrop/session"
)

// natTimeout bounds the one-shot NAT check; the slowest part is waiting
// out filtering probes that a strict NAT never lets through.
const natTimeout = 15 * time.Second

func newNATCmd(g *globals) *cobra.Command {
	var asJSON bool
	var servers, protocols, relays, bootstrap []string
	cmd := &cobra.Command{
		Use:   "nat",
		Short: "Check your public address, your NAT, your relays and the DHT",
		Long: `Ask STUN servers for this machine's public address and classify the NAT in
front of it (RFC 4787 words): mapping and filtering are each
endpoint-independent, address-dependent, address-and-port-dependent, or
unknown. Ask the router to map a port (PCP, NAT-PMP, UPnP) and give the
mapping back at once; while an agent runs with port_mapping on, show the
mapping it keeps instead (--map asks afresh). Then try each configured TURN relay: a line per
relay says the relayed address it handed out, or plainly why not (refused
credentials, no answer). Works without a running agent; it uses fresh
sockets, and gives up on a relay after 10 s.

It also says whether the DHT, where the agent publishes where it can be
reached and looks for peers that moved, answers, and how many DHT nodes
did: a running agent's own DHT node says; without one (or with
--dht-bootstrap), a short-lived node joins through the configured
bootstrap nodes (at most 10 s).`,
		Example: `  punchdrop nat
  punchdrop nat --relay 'turn:alice:secret@relay.example.com?transport=tcp'
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
			if len(relays) == 0 {
				relays = cfg.Relays
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), natTimeout)
			defer cancel()
			dhtDone := make(chan *control.DHTInfo, 1)
			go func() { dhtDone <- checkDHT(ctx, g, cfg, bootstrap) }()
			var relayInfo []control.RelayInfo
			var relayErr error
			relaysDone := make(chan struct{})
			go func() {
				defer close(relaysDone)
				relayInfo, relayErr = agent.RelayInfo(ctx, relays)
			}()
			// A running agent keeps its own port mapped: show that one,
			// unless --map asks for a fresh try.
			var agentMapping *control.PortMappingInfo
			if !cmd.Flags().Changed("map") {
				if ai, err := g.client().NAT(ctx); err == nil && ai.PortMapping != nil {
					agentMapping, protocols = ai.PortMapping, []string{"none"}
				}
			}
			report, buffers, mapping, err := classifyOnce(ctx, servers, protocols)
			if agentMapping != nil {
				mapping = agentMapping
			}
			<-relaysDone
			if relayErr != nil { // a URL that does not parse
				return relayErr
			}
			out := cmd.OutOrStdout()
			if err != nil {
				// Where STUN gets no answer (a network that drops UDP),
				// the relays are what still works: say how they did.
				if !asJSON {
					printRelays(out, relayInfo)
				}
				return err
			}
			info := agent.NATInfo(report, buffers)
			for _, a := range session.PublicIPv6Addrs() {
				info.IPv6 = append(info.IPv6, a.String())
			}
			info.PortMapping = mapping
			info.Relays = relayInfo
			info.DHT = <-dhtDone
			if asJSON {
				return printJSON(out, info)
			}
			fmt.Fprintf(out, "public address  %s\nmapping         %s\nfiltering       %s\nudp buffers     %d KiB receive, %d KiB send\n",
				info.PublicAddr, info.Mapping, info.Filtering, buffers.Receive>>10, buffers.Send>>10)
			printIPv6(out, info.IPv6)
			printPortMapping(out, info.PortMapping)
			printRelays(out, info.Relays)
			fmt.Fprintf(out, "dht             %s\n\n%s\n", info.DHT.Summary, info.Summary)
			if advice := buffers.Advice(); advice != "" {
				fmt.Fprintf(out, "Note: %s\n", advice)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().StringArrayVar(&servers, "stun", nil, "STUN server `HOST:PORT` to ask (repeatable; default: the configured ones)")
	cmd.Flags().StringSliceVar(&protocols, "map", []string{portmap.PCP, portmap.NATPMP, portmap.UPnP},
		"port mapping `PROTOCOLS` to ask the router for (pcp, nat-pmp, upnp; \"none\" asks none); the mapping is given back at once")
	cmd.Flags().StringArrayVar(&relays, "relay", nil, "TURN relay `URL` to try (repeatable; default: the configured ones)")
	cmd.Flags().StringArrayVar(&bootstrap, "dht-bootstrap", nil,
		"check the DHT through the node at `ADDR`, host:port (repeatable; \""+agent.NoDHT+"\": skip the DHT; default: ask the agent, else the configured ones)")
	return cmd
}

// printIPv6 writes the host's global IPv6 addresses: public, no NAT.
func printIPv6(out io.Writer, addrs []string) {
	if len(addrs) == 0 {
		fmt.Fprintf(out, "ipv6            none (no global IPv6 address: IPv4 only)\n")
		return
	}
	fmt.Fprintf(out, "ipv6            %s: public, no NAT (peers with IPv6 connect directly)\n", strings.Join(addrs, ", "))
}

// printPortMapping writes what the router mapped, or why nothing; no
// line when nobody asked it.
func printPortMapping(out io.Writer, m *control.PortMappingInfo) {
	switch {
	case m == nil:
	case m.External != "":
		fmt.Fprintf(out, "port mapping    %s by %s\n", m.External, m.Protocol)
	default:
		fmt.Fprintf(out, "port mapping    none: %s\n", safetext.Line(m.Error))
	}
}

// printRelays writes a line per relay: its allocation, or why none.
func printRelays(out io.Writer, relays []control.RelayInfo) {
	for _, r := range relays {
		if r.Relayed != "" {
			fmt.Fprintf(out, "relay           %s: relayed address %s\n", r.URL, r.Relayed)
		} else {
			fmt.Fprintf(out, "relay           %s: no allocation: %s\n", r.URL, safetext.Line(r.Error))
		}
	}
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

// classifyOnce runs NAT classification on a fresh socket, reports the
// buffers the OS gave it, and asks the router to map its port (then
// gives the mapping back), with the protocols given.
func classifyOnce(ctx context.Context, servers, protocols []string) (nat.Report, session.SocketBuffers, *control.PortMappingInfo, error) {
	conn, err := session.ListenUDP(0)
	if err != nil {
		return nat.Report{}, session.SocketBuffers{}, nil, err
	}
	defer conn.Close()
	buffers, err := session.ReadSocketBuffers(conn)
	if err != nil {
		return nat.Report{}, buffers, nil, err
	}
	report, err := nat.ClassifyOnce(ctx, conn, servers)
	if err != nil || slices.Contains(protocols, "none") {
		return report, buffers, nil, err
	}
	c := portmap.New(portmap.Config{Port: conn.LocalAddr().(*net.UDPAddr).Port, Protocols: protocols})
	m, err := c.Map(ctx)
	if err != nil {
		return report, buffers, &control.PortMappingInfo{Error: safetext.Clip(err.Error(), 300)}, nil
	}
	c.Remove(ctx, m)
	return report, buffers, &control.PortMappingInfo{Protocol: m.Protocol, External: m.External.String()}, nil
}
