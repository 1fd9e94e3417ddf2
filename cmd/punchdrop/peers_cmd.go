package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/safetext"
)

func newIDCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "id",
		Short: "Print your connection string, to send to a peer",
		Long: `Print this node's connection string. Send it to the person you want to
exchange files with; they run "punchdrop connect '<string>'", and you do the
same with theirs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := g.client().ID(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, info)
			}
			fmt.Fprintln(out, info.ConnectionString)
			fmt.Fprintf(cmd.ErrOrStderr(), "\nname %s, node %s, port %d\nNAT: %s\n", info.Name, info.NodeID, info.ListenPort, info.NAT.Summary)
			if len(info.PublicAddrs) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "public addresses: %s\n", strings.Join(info.PublicAddrs, ", "))
			}
			printIPv6(cmd.ErrOrStderr(), info.NAT.IPv6)
			printPortMapping(cmd.ErrOrStderr(), info.NAT.PortMapping)
			printRelays(cmd.ErrOrStderr(), info.NAT.Relays)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newPeersRemoveCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "remove PEER",
		Short: "Forget a peer: close its session and refuse its key from now on",
		Long: `Forget a peer. Its session closes, its key is refused from now on (its
probes show up as a pending request again), and files still queued for it
fail. PEER is a name, a node ID, or a unique prefix of one.`,
		Example: "  punchdrop peers remove bob",
		Args:    exactArgs(1, "a peer"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := g.client().RemovePeer(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			return nil
		},
	}
}

func newPeersRenameCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "rename PEER NAME",
		Short:   "Give a peer another name",
		Example: "  punchdrop peers rename 4GZM3RKP bob-laptop",
		Args:    exactArgs(2, "a peer and its new name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.client().RenamePeer(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s is now called %s\n", p.NodeID[:8], p.Name)
			return nil
		},
	}
}

func newConnectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "connect CONNECTION-STRING",
		Short: "Add a peer from its connection string and connect to it",
		Long: `Add a peer from the connection string it gave you ("punchdrop id" on its
side) and start connecting. The peer must connect to yours too; after that
you both remember each other.`,
		Example: `  punchdrop connect 'punchdrop:MFRGG...@203.0.113.7:41641?name=bob'`,
		Args:    exactArgs(1, "the peer's connection string (quote it)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.client().Connect(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added %s (%s), %s\n", safetext.Line(p.Name), p.NodeID[:8], p.State)
			sayNameTaken(cmd, p)
			return nil
		},
	}
}

func newPeersCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "peers",
		Short: "List peers, their state and path, and pending requests",
		Long: `List your peers: state (connected, connecting, offline) and how the
session runs (direct through the NATs, or lan), plus "pending" requests from
nodes that are not your peers yet ("punchdrop accept" them). For a peer that
cannot be reached, it says why, and what the last lookup of it on the DHT
found. --json adds where the session's address was learned (found_via:
session, dht, lan, conn_string or probe), when the peer was last heard from
(last_seen) and that lookup (dht_lookup).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			peers, err := g.client().Peers(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), peers)
			}
			if len(peers) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), `no peers yet: "punchdrop connect '<their string>'" adds one`)
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tNODE\tSTATE\tPATH\tADDRESS\tRTT")
			for _, p := range peers {
				rtt := ""
				if p.State == control.StateConnected {
					rtt = fmt.Sprintf("%.1f ms", p.RTTms)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", safetext.Line(p.Name), p.NodeID[:8], p.State, p.Path, p.Addr, rtt)
			}
			tw.Flush()
			pending := false
			for _, p := range peers {
				if p.Error != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "\n%s: %s\n", safetext.Line(p.Name), safetext.Line(p.Error))
				}
				if l := p.DHTLookup; l != nil && p.State != control.StateConnected {
					fmt.Fprintf(cmd.OutOrStdout(), "%s, looked up on the DHT at %s: %s\n", safetext.Line(p.Name), l.At.Local().Format(time.TimeOnly), safetext.Line(l.Detail))
				}
				pending = pending || p.State == control.StatePending
			}
			if pending {
				fmt.Fprintln(cmd.OutOrStdout(), "\npending: \"punchdrop accept <name or node>\" makes it a peer, \"punchdrop decline\" drops it")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.AddCommand(newPeersRemoveCmd(g), newPeersRenameCmd(g))
	return cmd
}

func newAcceptCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "accept NODE",
		Short: "Accept a pending peer request",
		Long:  `Make a node that asked to connect (shown as "pending" by "punchdrop peers") one of your peers. NODE is its ID, a unique prefix of it, or its name.`,
		Args:  exactArgs(1, "the pending node's ID, ID prefix or name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := g.client().Accept(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "accepted %s (%s)\n", safetext.Line(p.Name), p.NodeID[:8])
			sayNameTaken(cmd, p)
			return nil
		},
	}
}

func newDeclineCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "decline NODE",
		Short: "Drop a pending peer request",
		Args:  exactArgs(1, "the pending node's ID, ID prefix or name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.client().Decline(cmd.Context(), args[0])
		},
	}
}

// sayNameTaken tells that a new peer got another name than the one it
// came with, because a peer has that one already.
func sayNameTaken(cmd *cobra.Command, p control.PeerInfo) {
	if p.NameTaken != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "another peer is called %s already, so this one is %s (\"punchdrop peers rename %s NAME\" changes it)\n",
			safetext.Line(p.NameTaken), safetext.Line(p.Name), p.NodeID[:8])
	}
}
