// Command punchdrop sends files straight from one computer to another,
// through home and office NATs, with no server in the data path.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/punchdrop/punchdrop/agent"
	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/safetext"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		// Errors may carry a peer's words (a refusal's reason).
		fmt.Fprintln(os.Stderr, "punchdrop:", safetext.Line(err.Error()))
		os.Exit(1)
	}
}

// globals are the flags every command shares.
type globals struct {
	home string
}

func (g *globals) paths() agent.Paths { return agent.ResolvePaths(g.home) }

func (g *globals) client() *control.Client { return control.NewClient(g.paths().Socket) }

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "punchdrop",
		Short: "Send files straight to your peers, through NATs, with no server in between",
		Long: `punchdrop sends files directly from one computer to another across the
internet. A background agent finds each peer's address, punches a path
through both NATs, and talks to it over an encrypted, authenticated QUIC
session. Two people become peers by swapping connection strings.

Run with no command, punchdrop is the desktop app: a tray icon with a menu
(copy your connection string, connect a peer, send files, open the
folders) and notifications. It uses the agent that is already running, or
runs one itself. Without a desktop session it runs the agent in the
foreground instead.

Getting started on the command line, on each of two machines:

  punchdrop agent --name alice          # start the agent (keep it running)
  punchdrop id                          # print your connection string; send it to your peer
  punchdrop connect 'punchdrop:...'     # paste the string your peer sent you
  punchdrop peers                       # the peer shows up as "connected"
  punchdrop msg bob 'hello'             # send a text message
  punchdrop send bob ~/photos/          # send files and folders
  cp report.pdf ~/Punchdrop/Outbox/     # or drop them into the outbox: to every peer
  cp photo.jpg ~/Punchdrop/Outbox/bob/  #   (or into a peer's folder: to that peer)
  punchdrop status                      # see them move

Files live under --home DIR (or $PUNCHDROP_HOME) when given, else in the XDG
directories (~/.config/punchdrop, ~/.local/state/punchdrop, ...).`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE:          func(cmd *cobra.Command, _ []string) error { return runDesktop(cmd, g) },
	}
	root.PersistentFlags().StringVar(&g.home, "home", "", "keep config, key, state, socket and log under this `DIR` (default $"+agent.HomeEnv+", else XDG directories)")
	root.AddCommand(
		newAgentCmd(g),
		newIDCmd(g),
		newConnectCmd(g),
		newPeersCmd(g),
		newAcceptCmd(g),
		newDeclineCmd(g),
		newSendCmd(g),
		newStatusCmd(g),
		newPauseCmd(g),
		newResumeCmd(g),
		newMsgCmd(g),
		newMessagesCmd(g),
		newNATCmd(g),
		newEventsCmd(g),
		newLogsCmd(g),
		newConfigCmd(g),
		newDHTNodeCmd(),
		newDocsCmd(),
	)
	return root
}

// printJSON writes v as indented JSON, the --json output of read commands.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // connection strings contain '&'
	return enc.Encode(v)
}

// exactArgs is cobra.ExactArgs with an error that says what is missing.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s needs %s (see %q)", cmd.CommandPath(), what, cmd.CommandPath()+" --help")
		}
		return nil
	}
}
