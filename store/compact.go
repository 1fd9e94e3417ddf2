package store

import (
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// bbolt never gives pages back to the file system: the pages a prune
// frees are reused as the file fills again, so a file that once held a
// long history keeps its size for ever. Open therefore copies a file that
// is mostly free pages into a fresh one, which holds only the pages in
// use (bbolt's Compact), and puts it in the old one's place.
const (
	// compactMinSize is the smallest file worth compacting: below it,
	// the space won back is nothing next to the copy's cost at start.
	compactMinSize = 32 << 20
	// compactFreeShare is the share of free pages from which a file is
	// compacted: at half, the copy at least halves the file.
	compactFreeShare = 0.5
	// compactTxSize is how many bytes Compact copies per transaction of
	// the new file: large enough to be quick, small enough to bound the
	// memory of one transaction.
	compactTxSize = 64 << 20
)

// compactSuffix names the fresh file while it is written. One left over
// by a crash is removed by the next compaction.
const compactSuffix = ".compact"

// compact copies the file of db at path, when at least compactFreeShare
// of its minSize or more bytes are free pages, into a fresh file that
// takes its place, and returns the database open on that. When it does
// not compact, or the copy fails, it returns db as it was (or opened
// again). bbolt's lock lapses between closing the old file and opening
// the new one.
func compact(path string, db *bolt.DB, minSize int64) (*bolt.DB, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return db, nil
	}
	stats := db.Stats()
	free := int64(stats.FreePageN+stats.PendingPageN) * int64(db.Info().PageSize)
	if fi.Size() < minSize || float64(free) < compactFreeShare*float64(fi.Size()) {
		return db, nil
	}
	tmp := path + compactSuffix
	os.Remove(tmp)
	if err := copyCompacted(tmp, db); err != nil {
		os.Remove(tmp)
		return db, nil // the old file serves on
	}
	if err := db.Close(); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("compact: close: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
	} else if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return openBolt(path)
}

// copyCompacted writes the pages in use of db into a new file at dst,
// flushed to disk.
func copyCompacted(dst string, db *bolt.DB) error {
	out, err := bolt.Open(dst, fileMode, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return err
	}
	if err := safely(func() error { return bolt.Compact(out, db, compactTxSize) }); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
