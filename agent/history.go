package agent

import (
	"context"
	"time"
)

// pruneInterval is how often finished transfers older than history_days
// are forgotten: the history outgrows its limit by an hour's worth at
// most, and forgetting an hour's worth takes milliseconds.
const pruneInterval = time.Hour

// runPruner forgets finished transfers older than history_days: at
// start, every pruneInterval, and when a reload changes history_days,
// until ctx ends.
func (a *Agent) runPruner(ctx context.Context) {
	for {
		a.pruneHistory(ctx)
		select {
		case <-ctx.Done():
			return
		case <-a.pruneNow:
		case <-time.After(pruneInterval):
		}
	}
}

// wakePruner has runPruner prune now.
func (a *Agent) wakePruner() {
	select {
	case a.pruneNow <- struct{}{}:
	default:
	}
}

func (a *Agent) pruneHistory(ctx context.Context) {
	a.cfgMu.Lock()
	days := a.cfg.HistoryDays
	a.cfgMu.Unlock()
	start := time.Now()
	n, err := a.store.PruneHistory(ctx, start.AddDate(0, 0, -days))
	if err != nil && ctx.Err() == nil {
		a.log.Error("forget old transfers", "err", err)
	}
	if n > 0 {
		a.log.Info("forgot finished transfers older than history_days", "transfers", n, "history_days", days, "took", time.Since(start).Round(time.Millisecond))
	}
}
