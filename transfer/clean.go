package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"
)

// StaleAfter is how long an interrupted incoming transfer waits for its
// sender to resume it before Clean forgets it. (How long a finished one
// is remembered, to answer a sender that missed our END_ACK, is the
// journal's to decide: the agent keeps its history for history_days.)
const StaleAfter = 30 * 24 * time.Hour

// Clean tidies the staging folder at start-up, before any Receive: it
// removes staging files no transfer claims (a crash between creating one
// and recording it) and forgets unfinished transfers untouched for
// StaleAfter, removing their staging files.
func (rc *Receiver) Clean(now time.Time) error {
	records, err := rc.Journal.UnfinishedIncoming("")
	if err != nil {
		return fmt.Errorf("clean staging: %w", err)
	}
	claimed := map[string]bool{}
	for _, rec := range records {
		if now.Sub(rec.Updated) < StaleAfter {
			claimed[path.Base(rec.Staging)] = true
			continue
		}
		if err := rc.Journal.DeleteIncoming(rec.Peer, rec.ID); err != nil {
			return fmt.Errorf("clean staging: %w", err)
		}
		rc.logger().Info("forgot a stale incoming transfer", "file", rec.Name, "state", rec.State, "updated", rec.Updated)
	}
	entries, err := fs.ReadDir(rc.Downloads.FS(), StagingDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("clean staging: %w", err)
	}
	for _, e := range entries {
		if !claimed[e.Name()] && strings.HasSuffix(e.Name(), ".part") {
			if err := rc.Downloads.Remove(path.Join(StagingDir, e.Name())); err != nil {
				return fmt.Errorf("clean staging: %w", err)
			}
		}
	}
	return nil
}
