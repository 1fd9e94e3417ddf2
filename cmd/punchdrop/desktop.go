package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/punchdrop/punchdrop/agent"
	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/tray"
)

// agentReadyTimeout bounds how long the tray waits for the agent it
// started to answer on its socket; start-up takes milliseconds, NAT
// discovery runs after it.
const agentReadyTimeout = 15 * time.Second

// runDesktop is `punchdrop` with no command: the tray app. It attaches to
// an agent that already answers on the socket, or runs one in this process
// (one binary, and Quit stops both). Without a desktop session it says so
// and runs the agent in the foreground instead.
func runDesktop(cmd *cobra.Command, g *globals) error {
	ctx := cmd.Context()
	stderr := cmd.ErrOrStderr()
	client := g.client()
	_, err := client.ID(ctx)
	running := err == nil
	if err := tray.CheckDesktop(ctx, tray.HostWait); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if running {
			fmt.Fprintf(stderr, "punchdrop: %v, so no tray icon; the agent is already running (see \"punchdrop --help\" for the commands)\n", err)
			return nil
		}
		fmt.Fprintf(stderr, "punchdrop: %v, so no tray icon; running the agent in the foreground instead (Ctrl-C stops it; \"punchdrop --help\" lists the commands)\n", err)
		return agent.Run(ctx, agent.Options{Home: g.home, Port: -1, Stderr: stderr})
	}

	paths := g.paths()
	cfg, err := agent.LoadConfig(paths.Config)
	if err != nil {
		return err
	}
	eff := cfg.Effective(paths)
	opts := tray.Options{
		Socket:    paths.Socket,
		Outbox:    eff.Outbox,
		Downloads: eff.Downloads,
		Command:   trayCommand(g.home),
		Logger:    slog.New(slog.NewTextHandler(stderr, nil)),
	}
	if running {
		return tray.Run(ctx, opts)
	}

	// Run the agent here: it stops when the tray quits, and the tray quits
	// when the agent fails.
	agentCtx, stopAgent := context.WithCancel(ctx)
	defer stopAgent()
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.Run(agentCtx, agent.Options{Home: g.home, Port: -1, Stderr: stderr}) }()
	if err := waitAgent(ctx, client, agentDone); err != nil {
		return err
	}
	trayCtx, stopTray := context.WithCancel(ctx)
	defer stopTray()
	agentErr := make(chan error, 1)
	go func() {
		err := <-agentDone
		agentErr <- err
		stopTray()
	}()
	opts.OwnsAgent = true
	trayErr := tray.Run(trayCtx, opts)
	stopAgent()
	if err := <-agentErr; err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	return trayErr
}

// waitAgent waits until the agent answers on its socket, or fails.
func waitAgent(ctx context.Context, client *control.Client, done <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, agentReadyTimeout)
	defer cancel()
	for {
		_, err := client.ID(ctx)
		if err == nil {
			return nil
		}
		select {
		case err := <-done:
			if err == nil {
				err = errors.New("stopped at once")
			}
			return fmt.Errorf("start agent: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("start agent: not answering after %s: %w", agentReadyTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// trayCommand is the command line that starts this tray at login: the
// plain name when it resolves to this binary, else this binary's path,
// plus --home when one was given.
func trayCommand(home string) []string {
	command := []string{"punchdrop"}
	self, err := os.Executable()
	if err == nil {
		inPath, lerr := exec.LookPath("punchdrop")
		if lerr != nil || !sameFile(inPath, self) {
			command[0] = self
		}
	}
	if home != "" {
		if abs, err := filepath.Abs(home); err == nil {
			home = abs
		}
		command = append(command, "--home", home)
	}
	return command
}

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
