package transfer

import (
	"errors"
	"math"
	"math/bits"
	"os"

	"golang.org/x/sys/unix"
)

// reserve allocates size bytes for f, so running out of space fails now.
// Filesystems without fallocate are left to fail on write. A failed call
// may leave part of the allocation behind (ext4 keeps it): the caller
// gives it back (giveBack).
func reserve(f *os.File, size int64) error {
	if size == 0 {
		return nil
	}
	err := unix.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		return nil
	}
	return err
}

// freeSpace returns the bytes a user without privileges may still
// allocate on the filesystem that holds dir (root may take the blocks
// the filesystem keeps for it; incoming files do not).
func freeSpace(dir *os.File) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(dir.Fd()), &st); err != nil {
		return 0, err
	}
	hi, lo := bits.Mul64(st.Bavail, uint64(st.Bsize))
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64, nil
	}
	return int64(lo), nil
}

// allocated returns the bytes the filesystem holds for f.
func allocated(f *os.File) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, err
	}
	return st.Blocks * 512, nil // st_blocks counts 512-byte units whatever the block size
}
