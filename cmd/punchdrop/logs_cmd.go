package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
)

// followInterval is how often `logs -f` looks for new lines.
const followInterval = 250 * time.Millisecond

func newLogsCmd(g *globals) *cobra.Command {
	var follow bool
	var lines int
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Show the agent's log",
		Long: `Print the last lines of the agent's log file (the agent need not be running).
With -f, keep printing new lines as the agent writes them, across log
rotation, until interrupted. The file is ` + "`punchdrop.log`" + ` in the state directory
($XDG_STATE_HOME/punchdrop, or --home).`,
		Example: `  punchdrop logs -n 100
  punchdrop logs -f`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := g.paths().Log
			offset, err := printTail(cmd.OutOrStdout(), path, lines)
			if err != nil {
				return err
			}
			if !follow {
				return nil
			}
			return followLog(cmd.Context(), cmd.OutOrStdout(), path, offset)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().IntVarP(&lines, "lines", "n", 50, "how many of the last lines to print")
	return cmd
}

// printTail prints the last n lines of the file and returns its size.
func printTail(w io.Writer, path string, n int) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("no log yet at %s: the agent has not run with this home", path)
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var ring []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		if n <= 0 {
			continue
		}
		if len(ring) == n {
			ring = ring[1:]
		}
		ring = append(ring, s.Text())
	}
	if err := s.Err(); err != nil {
		return 0, fmt.Errorf("read log: %w", err)
	}
	for _, line := range ring {
		fmt.Fprintln(w, line)
	}
	offset, err := f.Seek(0, io.SeekCurrent)
	return offset, err
}

// followLog copies what is appended to path from offset on until ctx
// ends. When the file is rotated (it shrinks or is replaced), it starts
// over at the new file's beginning.
func followLog(ctx context.Context, w io.Writer, path string, offset int64) error {
	var last os.FileInfo
	for {
		if fi, err := os.Stat(path); err == nil {
			if last != nil && (!os.SameFile(fi, last) || fi.Size() < offset) {
				offset = 0 // rotated
			}
			last = fi
			if fi.Size() > offset {
				n, err := copyFrom(w, path, offset)
				if err != nil {
					return err
				}
				offset += n
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(followInterval):
		}
	}
}

func copyFrom(w io.Writer, path string, offset int64) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, err
	}
	return io.Copy(w, f)
}
