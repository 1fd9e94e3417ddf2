package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/punchdrop/punchdrop/bytesize"
	"github.com/punchdrop/punchdrop/control"
	"github.com/punchdrop/punchdrop/safetext"
)

// pollInterval is how often progress views re-read the agent's status:
// smooth enough for a bar, and a status read costs the agent little.
const pollInterval = 250 * time.Millisecond

func newSendCmd(g *globals) *cobra.Command {
	var wait, asJSON bool
	var as string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "send PEER FILE|FOLDER...",
		Short: "Send files and folders to a peer",
		Long: `Queue files and folders for a peer. The agent sends them as soon as it has
a session with the peer, resumes after lost connections and restarts, and
retries until the peer has them. A folder arrives with its layout.

PEER is a name, a node ID, or a unique prefix of one. Without --wait the
command returns once the files are queued; "punchdrop status" shows them.`,
		Example: `  punchdrop send bob ~/video.mkv ~/photos/
  punchdrop send --wait bob report.pdf     # progress bar; non-zero exit if it fails
  punchdrop send --as notes.txt bob /tmp/x # bob gets it as notes.txt`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 2 {
				return errors.New("send needs a peer and at least one file or folder, e.g. punchdrop send bob ~/video.mkv")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			paths := make([]string, len(args)-1)
			for i, p := range args[1:] {
				abs, err := filepath.Abs(p)
				if err != nil {
					return err
				}
				if _, err := os.Stat(abs); err != nil {
					return err
				}
				paths[i] = abs
			}
			client := g.client()
			res, err := client.Send(cmd.Context(), control.SendRequest{Peer: args[0], Paths: paths, As: as})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !wait {
				if asJSON {
					return printJSON(out, res)
				}
				if len(res.Transfers) == 0 {
					return errors.New("the agent queued nothing and did not say why")
				}
				fmt.Fprintf(out, "queued %s for %s\n", countFiles(res.Transfers), peerLabel(res.Transfers[0]))
				return nil
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			ids := map[string]bool{}
			for _, t := range res.Transfers {
				ids[t.ID] = true
			}
			// With --json, stdout carries only the JSON; progress goes to stderr.
			progressOut := out
			if asJSON {
				progressOut = cmd.ErrOrStderr()
			}
			final, err := follow(ctx, client, progressOut, func(t control.TransferInfo) bool { return ids[t.ID] }, true, false)
			if asJSON {
				if perr := printJSON(out, control.SendResult{Transfers: final}); err == nil {
					err = perr
				}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&as, "as", "", "offer a single file under this `NAME` (the receiver still makes it safe)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the peer has every file, with a progress bar")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "with --wait, give up after this long (0: wait for good)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the queued transfers as JSON (with --wait: as they ended)")
	return cmd
}

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON, watch bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show transfers: queued, moving, and finished today",
		Long: `Show file transfers to and from peers. In a terminal, transfers that are
moving get live progress bars (name, percent, rate, time left) until they
end; press Ctrl-C to stop watching, which does not stop the transfers.
With --watch it keeps watching, adding transfers as they start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client := g.client()
			st, err := client.Status(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, st)
			}
			printQueueSummary(out, st)
			if !watch {
				if len(st.Transfers) == 0 {
					fmt.Fprintln(out, "no transfers")
					return nil
				}
				if !isTerminal(out) || !anyMoving(st.Transfers) {
					return printTransfers(out, st.Transfers)
				}
			}
			_, err = follow(cmd.Context(), client, out, func(t control.TransferInfo) bool { return moving(t.State) }, false, watch)
			if errors.Is(err, errSomeFailed) {
				return nil // status reports failures; it does not fail itself
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "keep watching until interrupted")
	return cmd
}

var errSomeFailed = errors.New("some files failed")

// follow shows the transfers want selects until each has ended, as live
// bars on a terminal and as one line per ended transfer otherwise. It
// returns them as they ended; errSomeFailed if any failed. With wholeSet,
// the selection is fixed by the first poll; else transfers that start
// moving later join. With forever, it goes on until ctx ends.
func follow(ctx context.Context, client *control.Client, out io.Writer, want func(control.TransferInfo) bool, wholeSet, forever bool) ([]control.TransferInfo, error) {
	view := newProgressView(ctx, out)
	defer view.close()
	tracked := map[string]control.TransferInfo{}
	var order []string
	first := true
	for {
		st, err := client.Status(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range st.Transfers {
			_, known := tracked[t.ID]
			if !known && (!first && wholeSet || !want(t)) {
				continue
			}
			if !known {
				order = append(order, t.ID)
			}
			tracked[t.ID] = t
			view.update(t)
		}
		first = false
		if !forever && allEnded(tracked) {
			view.close()
			final := make([]control.TransferInfo, len(order))
			failed := 0
			for i, id := range order {
				final[i] = tracked[id]
				if final[i].State == control.TransferFailed {
					failed++
				}
			}
			if failed > 0 {
				return final, fmt.Errorf("%w: %d of %d", errSomeFailed, failed, len(final))
			}
			return final, nil
		}
		select {
		case <-ctx.Done():
			if forever {
				return nil, nil
			}
			return nil, fmt.Errorf("stopped waiting (the transfers go on): %w", ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

func allEnded(ts map[string]control.TransferInfo) bool {
	for _, t := range ts {
		if t.State != control.TransferDone && t.State != control.TransferFailed {
			return false
		}
	}
	return true
}

func moving(state string) bool {
	return state == control.TransferSending || state == control.TransferReceiving
}

func anyMoving(ts []control.TransferInfo) bool {
	for _, t := range ts {
		if moving(t.State) {
			return true
		}
	}
	return false
}

// progressView draws one bar per transfer with mpb on a terminal, and
// prints a line when a transfer ends elsewhere.
type progressView struct {
	out    io.Writer
	bars   *mpb.Progress // nil when out is not a terminal
	bar    map[string]*mpb.Bar
	info   map[string]control.TransferInfo
	ended  map[string]bool
	closed bool
}

func newProgressView(ctx context.Context, out io.Writer) *progressView {
	v := &progressView{out: out, bar: map[string]*mpb.Bar{}, info: map[string]control.TransferInfo{}, ended: map[string]bool{}}
	if isTerminal(out) {
		v.bars = mpb.NewWithContext(ctx, mpb.WithOutput(out), mpb.WithWidth(100), mpb.WithRefreshRate(pollInterval))
	}
	return v
}

func (v *progressView) update(t control.TransferInfo) {
	v.info[t.ID] = t
	ended := t.State == control.TransferDone || t.State == control.TransferFailed
	if v.bars == nil {
		if ended && !v.ended[t.ID] {
			fmt.Fprintln(v.out, endedLine(t))
		}
		v.ended[t.ID] = ended
		return
	}
	b, ok := v.bar[t.ID]
	if !ok {
		id := t.ID
		b = v.bars.AddBar(max(t.Size, 1),
			mpb.PrependDecorators(decor.Name(arrow(t)+" "+peerLabel(t)+"  "+safetext.Line(t.Name), decor.WC{C: decor.DindentRight | decor.DextraSpace})),
			mpb.AppendDecorators(
				decor.OnAbortMeta(decor.Percentage(decor.WCSyncSpace), func(string) string { return "failed" }),
				decor.Any(func(decor.Statistics) string { return rateAndETA(v.info[id]) }, decor.WCSyncSpace),
			))
		v.bar[t.ID] = b
	}
	if v.ended[t.ID] {
		return
	}
	switch t.State {
	case control.TransferDone:
		b.SetCurrent(max(t.Size, 1))
	case control.TransferFailed:
		b.Abort(false)
	default:
		b.SetCurrent(t.Done)
	}
	v.ended[t.ID] = ended
}

func (v *progressView) close() {
	if v.bars != nil && !v.closed {
		for _, b := range v.bar {
			if !b.Completed() {
				b.Abort(false)
			}
		}
		v.bars.Wait()
		for id, t := range v.info {
			if t.State == control.TransferFailed && v.ended[id] {
				fmt.Fprintln(v.out, endedLine(t))
			}
		}
	}
	v.closed = true
}

func endedLine(t control.TransferInfo) string {
	if t.State == control.TransferFailed {
		return fmt.Sprintf("failed  %s %s  %s: %s", arrow(t), peerLabel(t), safetext.Line(t.Name), safetext.Line(t.Error))
	}
	return fmt.Sprintf("done    %s %s  %s (%s)", arrow(t), peerLabel(t), safetext.Line(t.Name), bytesize.Format(t.Size))
}

func rateAndETA(t control.TransferInfo) string {
	switch {
	case t.State == control.TransferQueued && t.Error != "":
		return "waiting: " + safetext.Line(t.Error)
	case t.State == control.TransferQueued:
		return "queued"
	case t.RateBps <= 0:
		return ""
	}
	return fmt.Sprintf("%s/s  %s left", bytesize.Format(int64(t.RateBps)), (time.Duration(t.ETASec) * time.Second).String())
}

// printQueueSummary says what the agent needs the user to know, how many
// files wait for each peer, and whether sending is paused.
func printQueueSummary(out io.Writer, st control.Status) {
	for _, alert := range st.Alerts {
		fmt.Fprintln(out, "ATTENTION:", alert)
	}
	if st.Paused {
		fmt.Fprintln(out, `sending is paused ("punchdrop resume" goes on)`)
	}
	if len(st.Queue) == 0 {
		return
	}
	perPeer := map[string]int{}
	var order []string
	for _, q := range st.Queue {
		name := safetext.Line(cmp.Or(q.PeerName, q.Peer[:min(8, len(q.Peer))]))
		if perPeer[name] == 0 {
			order = append(order, name)
		}
		perPeer[name]++
	}
	parts := make([]string, len(order))
	for i, name := range order {
		parts[i] = fmt.Sprintf("%d for %s", perPeer[name], name)
	}
	fmt.Fprintf(out, "queue: %s\n", strings.Join(parts, ", "))
}

func printTransfers(out io.Writer, ts []control.TransferInfo) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tPEER\tFILE\tSTATE\tDONE\tRATE")
	for _, t := range ts {
		pct := 100.0
		if t.Size > 0 {
			pct = float64(t.Done) * 100 / float64(t.Size)
		}
		state := t.State
		if t.Error != "" {
			state += ": " + safetext.Line(t.Error)
		}
		rate := ""
		if moving(t.State) && t.RateBps > 0 {
			rate = bytesize.Format(int64(t.RateBps)) + "/s"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f%% of %s\t%s\n", arrow(t), peerLabel(t), safetext.Line(t.Name), state, pct, bytesize.Format(t.Size), rate)
	}
	return tw.Flush()
}

func arrow(t control.TransferInfo) string {
	if t.Direction == control.DirectionIn {
		return "←"
	}
	return "→"
}

func peerLabel(t control.TransferInfo) string {
	if t.PeerName != "" {
		return safetext.Line(t.PeerName)
	}
	return t.Peer[:min(8, len(t.Peer))]
}

func countFiles(ts []control.TransferInfo) string {
	var total int64
	for _, t := range ts {
		total += t.Size
	}
	noun := "files"
	if len(ts) == 1 {
		noun = "file"
	}
	return fmt.Sprintf("%d %s (%s)", len(ts), noun, bytesize.Format(total))
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
