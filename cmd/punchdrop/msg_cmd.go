package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/safetext"
)

func newMsgCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "msg PEER TEXT...",
		Short: "Send a text message to a peer",
		Long: `Send a text message to a peer and wait until it has it. PEER is a name, a
node ID, or a unique prefix of one. If the peer is not connected, the agent
tries to reach it for up to --timeout.`,
		Example: `  punchdrop msg bob 'the files are in your downloads'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return fmt.Errorf("msg needs a peer and a text, e.g. punchdrop msg bob 'hello'")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			req := control.MsgRequest{Peer: args[0], Text: strings.Join(args[1:], " "), TimeoutMs: int(timeout.Milliseconds())}
			if err := g.client().SendMessage(cmd.Context(), req); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "delivered")
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Second, "how long to wait for an offline peer")
	return cmd
}

func newMessagesCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "messages",
		Short: "Show received messages",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			msgs, err := g.client().Messages(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), msgs)
			}
			if len(msgs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no messages")
				return nil
			}
			return printMessages(cmd.OutOrStdout(), msgs)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newEventsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "events",
		Short: "Print the agent's events as JSON lines until interrupted",
		Long:  `Follow the agent's event stream (peer up/down, peer requests, messages), one JSON object per line, for scripts.`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.client().Events(cmd.Context(), func(ev control.Event) error {
				return printJSON(cmd.OutOrStdout(), ev)
			})
		},
	}
}

// printMessages lists messages, one line each. A message shows as one
// line, escapes and all: it cannot steer the terminal or forge a line of
// its own.
func printMessages(out io.Writer, msgs []control.Message) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, m := range msgs {
		from := m.FromName
		if from == "" {
			from = m.From[:min(8, len(m.From))]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", m.Time.Local().Format("2006-01-02 15:04"), safetext.Line(from), safetext.Line(m.Text))
	}
	return tw.Flush()
}
