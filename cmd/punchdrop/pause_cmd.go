package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newPauseCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pause",
		Short: "Stop sending files until resumed",
		Long: `Stop sending files to peers. Files in flight stop where they are and keep
their place in the queue; what the receiver holds is not sent again. Files
dropped into the outbox are still queued. Receiving goes on. The pause
lasts until "punchdrop resume", also across restarts of the agent.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.client().Pause(cmd.Context(), true); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), `sending paused; "punchdrop resume" goes on`)
			return nil
		},
	}
}

func newResumeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resume",
		Short: "Send files again after pause",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := g.client().Pause(cmd.Context(), false); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "sending resumed")
			return nil
		},
	}
}
