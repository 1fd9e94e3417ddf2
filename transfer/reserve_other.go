//go:build !linux

package transfer

import (
	"math"
	"os"
)

// reserve is a no-op where fallocate is missing: a full disk shows on
// write instead.
func reserve(*os.File, int64) error { return nil }

// freeSpace is unknown here: only MaxStagedPerPeer bounds what peers
// stage, and a full disk shows on write.
func freeSpace(*os.File) (int64, error) { return math.MaxInt64, nil }

// allocated is unknown here; nothing is reserved ahead either.
func allocated(*os.File) (int64, error) { return 0, nil }
