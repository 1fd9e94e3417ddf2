package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/punchdrop/punchdrop/dht"
)

// mainlineBootstrap is the --bootstrap word that stands for the mainline
// DHT's well-known routers.
const mainlineBootstrap = "mainline"

// dhtStatsEvery is how often dht-node logs its figures by default: often
// enough to see a node take part, rarely enough to leave the log readable.
const dhtStatsEvery = 10 * time.Minute

func newDHTNodeCmd() *cobra.Command {
	var (
		listen     string
		bootstrap  []string
		logStores  bool
		debug      bool
		statsEvery time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dht-node",
		Short: "Run a plain BitTorrent DHT node, for a private network or the lab",
		Long: `Run a node of the BitTorrent DHT (BEP 5) that stores and serves BEP 44
items, until Ctrl-C or SIGTERM. It needs no key, no config and no agent.

punchdrop agents publish where they can be reached as BEP 44 items on the
DHT: encrypted, signed with a key that changes every day, readable only by
holders of the node's connection string. By default they use the public
mainline DHT. Where that is out of reach or unwanted (a closed network, a
test lab), run two or three of these nodes instead and let the agents
bootstrap from them.

The first node bootstraps from nobody; every other node is given one or
more nodes that already run (--bootstrap, repeatable). "--bootstrap
mainline" joins the public mainline DHT through its well-known routers
instead.

A node keeps at most 10,000 items, each for two hours after its last put
(BEP 44), in memory only. It sends at most 50 datagrams a second. It logs
to stderr: its address when it starts, its figures every --stats interval,
and with --log-stores each item it stores (target, sequence number and
size; what a record holds is ciphertext it cannot read).`,
		Example: `  # a private DHT of three machines
  punchdrop dht-node --listen 0.0.0.0:6881
  punchdrop dht-node --listen 0.0.0.0:6881 --bootstrap 192.0.2.10:6881
  punchdrop dht-node --listen 0.0.0.0:6881 --bootstrap 192.0.2.10:6881 --bootstrap 192.0.2.11:6881

  # watch what a node stores
  punchdrop dht-node --listen 198.18.0.50:6881 --log-stores`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if listen == "" {
				return fmt.Errorf("dht-node needs --listen ADDR, the UDP address to serve on (see %q)", cmd.CommandPath()+" --help")
			}
			logger := dhtNodeLogger(cmd.ErrOrStderr(), debug)
			return runDHTNode(cmd, dht.Config{
				Listen:    listen,
				Bootstrap: expandBootstrap(bootstrap),
				Logger:    logger,
				OnStore:   storeLogger(logger, logStores),
			}, statsEvery)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "UDP `ADDR` to serve on, host:port (required; port 6881 is the DHT's usual)")
	cmd.Flags().StringArrayVar(&bootstrap, "bootstrap", nil, "join the DHT through the node at `ADDR`, host:port (repeatable; \""+mainlineBootstrap+"\": the public mainline DHT's routers)")
	cmd.Flags().BoolVar(&logStores, "log-stores", false, "log every item the node stores, at info level")
	cmd.Flags().BoolVar(&debug, "debug", false, "log at debug level, the DHT library's messages included")
	cmd.Flags().DurationVar(&statsEvery, "stats", dhtStatsEvery, "log the node's figures every `INTERVAL` (0: only when it stops)")
	return cmd
}

// runDHTNode runs a node until the command's context ends.
func runDHTNode(cmd *cobra.Command, cfg dht.Config, statsEvery time.Duration) error {
	node, err := dht.New(cfg)
	if err != nil {
		return err
	}
	defer node.Close()
	var tick <-chan time.Time
	if statsEvery > 0 {
		t := time.NewTicker(statsEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-cmd.Context().Done():
			logDHTStats(cfg.Logger, "dht node stopping", node.Stats())
			return nil
		case <-tick:
			logDHTStats(cfg.Logger, "dht node", node.Stats())
		}
	}
}

// expandBootstrap replaces the word "mainline" with the mainline routers.
func expandBootstrap(in []string) []string {
	var out []string
	for _, b := range in {
		if b == mainlineBootstrap {
			out = append(out, dht.DefaultBootstrap()...)
		} else {
			out = append(out, b)
		}
	}
	return slices.Compact(out)
}

func dhtNodeLogger(w io.Writer, debug bool) *slog.Logger {
	level := slog.LevelInfo
	if debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// storeLogger logs each stored item: at info level with --log-stores,
// else at debug level. Only what the node itself can see: the target, the
// key's first bytes, seq and sizes.
func storeLogger(l *slog.Logger, atInfo bool) func(dht.StoredItem) {
	level := slog.LevelDebug
	if atInfo {
		level = slog.LevelInfo
	}
	return func(it dht.StoredItem) {
		l.Log(context.Background(), level, "dht stored item",
			"target", it.Target.String(), "key", hex.EncodeToString(it.Key[:4]), "seq", it.Seq,
			"value_bytes", len(it.Value), "salt_bytes", len(it.Salt))
	}
}

func logDHTStats(l *slog.Logger, msg string, s dht.Stats) {
	l.Info(msg, "nodes", s.Nodes, "good_nodes", s.GoodNodes, "items", s.Items,
		"sent_packets", s.Sent.Packets, "sent_bytes", s.Sent.Bytes,
		"received_packets", s.Received.Packets, "received_bytes", s.Received.Bytes, "dropped", s.Dropped)
}
