//go:build !linux

package transfer

import "os"

// reserve is a no-op where fallocate is missing: a full disk shows on
// write instead.
func reserve(*os.File, int64) error { return nil }
