//go:build !linux

package transfer

import "os"

// renameInstead returns linkErr: without Linux's renameat2 there is no
// rename here that refuses to replace a file, so a filesystem without
// hard links cannot take files safely.
func renameInstead(_ *os.Root, _, _ string, linkErr error) error { return linkErr }
