package main

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/punchdrop/punchdrop/agent"
	"github.com/punchdrop/punchdrop/control"
)

func newConfigCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show the configuration, or change it with config set",
		Long: `Show the configuration punchdrop uses: the config file's values with the
defaults filled in. "punchdrop config set KEY VALUE" changes one key; a
running agent picks the change up: the port, STUN servers, relays, punch
timeout, lan_discovery and congestion by starting over in place (sessions drop for a
moment, transfers resume), every other key at once. Relays are shown
without their passwords and secrets.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			paths := g.paths()
			cfg, err := agent.LoadConfig(paths.Config)
			if err != nil {
				return err
			}
			info := cfg.Effective(paths)
			if asJSON {
				return printJSON(cmd.OutOrStdout(), info)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, row := range [][2]string{
				{"name", info.Name}, {"listen_port", fmt.Sprint(info.ListenPort)},
				{"stun_servers", strings.Join(info.STUNServers, ", ")},
				{"relays", strings.Join(info.Relays, ", ")},
				{"outbox", info.Outbox}, {"downloads", info.Downloads},
				{"after_send", info.AfterSend}, {"quiet_period", info.QuietPeriod},
				{"downloads_per_peer", fmt.Sprint(info.DownloadsPerPeer)},
				{"punch_timeout", info.PunchTimeout}, {"chunk_size", fmt.Sprint(info.ChunkSize)},
				{"lanes", fmt.Sprint(info.Lanes)}, {"congestion", info.Congestion}, {"log_level", info.LogLevel},
				{"min_free_space", info.MinFreeSpace}, {"max_staged_per_peer", info.MaxStagedPerPeer},
				{"history_days", fmt.Sprint(info.HistoryDays)},
				{"dht", fmt.Sprint(info.DHT)}, {"dht_bootstrap", strings.Join(info.DHTBootstrap, ", ")},
				{"lan_discovery", fmt.Sprint(info.LANDiscovery)},
				{"port_mapping", fmt.Sprint(info.PortMapping)},
			} {
				fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
			}
			fmt.Fprintf(tw, "\n(file: %s)\n", info.File)
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.AddCommand(newConfigSetCmd(g))
	return cmd
}

func newConfigSetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Change one configuration key",
		Long: `Change one key of the config file and tell a running agent. Keys: ` + strings.Join(agent.ConfigKeys, ", ") + `.
stun_servers and dht_bootstrap take a comma-separated list of HOST:PORT,
relays one of TURN URLs (turn:USER:PASS@HOST[:PORT][?transport=tcp],
turns:…, or turn:HOST?secret=S); an empty VALUE ("") restores a key's
default.`,
		Example: `  punchdrop config set name alice-laptop
  punchdrop config set stun_servers stun.example.org:3478,stun2.example.org:3478
  punchdrop config set relays 'turn:alice:secret@relay.example.com?transport=tcp'
  punchdrop config set after_send keep        # leave sent files in the outbox
  punchdrop config set quiet_period 5s        # wait longer for slow copies
  punchdrop config set log_level debug
  punchdrop config set min_free_space 10GiB   # keep more of the disk free
  punchdrop config set history_days 7         # remember finished transfers for a week
  punchdrop config set dht false              # never publish or look up on the DHT
  punchdrop config set dht_bootstrap 192.0.2.10:6881,192.0.2.11:6881   # a private DHT`,
		Args: exactArgs(2, "a key and a value"),
		RunE: func(cmd *cobra.Command, args []string) error {
			paths := g.paths()
			cfg, err := agent.LoadConfig(paths.Config)
			if err != nil {
				return err
			}
			if err := cfg.Set(args[0], args[1]); err != nil {
				return err
			}
			if err := cfg.CheckFolders(paths); err != nil {
				return err
			}
			if err := cfg.Save(paths.Config); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			res, err := g.client().ReloadConfig(cmd.Context())
			switch {
			case errors.Is(err, control.ErrNoAgent):
				fmt.Fprintf(out, "saved %s; the agent uses it when it starts\n", args[0])
			case err != nil:
				return fmt.Errorf("saved, but the agent did not reload: %w", err)
			case res.Restarting:
				fmt.Fprintf(out, "saved %s; the running agent restarts to use it (transfers resume)\n", args[0])
			default:
				fmt.Fprintf(out, "saved %s; the running agent uses it now\n", args[0])
			}
			return nil
		},
	}
}
