//go:build linux

package transfer

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ext4ImageSize is the loop image's size: small enough to make in a
// blink, large enough for 4 KiB blocks (mkfs picks 1 KiB for smaller
// images, whose 16 GiB file-size limit answers EFBIG first).
const ext4ImageSize = 300 << 20

// mountExt4 makes an ext4 filesystem in a loop image, mounts it and
// returns its mount point; cleanups unmount it and remove the image.
// Disk-full behaviour is tested there because ext4 keeps what a failed
// fallocate allocated, where tmpfs rolls it back and would hide a leak.
// Mounting needs root: without it the test is skipped, except under
// CI=true, where it fails, as it does when the image cannot be mounted.
func mountExt4(t testing.TB) string {
	t.Helper()
	cannot := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		cannot("mounting an ext4 image needs root")
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "ext4.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, ext4ImageSize); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-b", "4096", img).CombinedOutput(); err != nil {
		cannot("mkfs.ext4: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		cannot("mount the ext4 image: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
			exec.Command("umount", "-l", mnt).Run()
		}
	})
	return mnt
}

// diskUsage is what statfs says of a filesystem.
type diskUsage struct {
	free  uint64 // blocks free, root's reserve included
	avail uint64 // bytes free for users
}

func usageOf(t testing.TB, dir string) diskUsage {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return diskUsage{free: st.Bfree, avail: st.Bavail * uint64(st.Bsize)}
}

// mustGiveBack fails unless the filesystem at dir is back to before once
// its journal is committed (freed blocks show at once here; the wait is
// for slower disks).
func mustGiveBack(t testing.TB, what, dir string, before diskUsage) {
	t.Helper()
	deadline := time.Now().Add(hostileTimeout)
	for {
		if f, err := os.Open(dir); err == nil {
			unix.Syncfs(int(f.Fd()))
			f.Close()
		}
		now := usageOf(t, dir)
		if now == before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d blocks free, %d before: the refusal kept %d KiB", what, now.free, before.free, (before.free-now.free)*4)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDiskFullOnExt4 offers what the disk cannot hold, on a real ext4
// filesystem where a failed fallocate keeps its blocks. The receiver
// used to answer "not enough disk space" after fallocate had filled the
// disk, and kept the blocks, the staging file and the record; every
// retry took the space freed meanwhile. Now each refusal leaves the disk
// as it was, no offer eats into the free-space reserve, two offers that
// fit only one at a time do not both get in, and a file that fits still
// arrives.
func TestDiskFullOnExt4(t *testing.T) {
	mnt := mountExt4(t)
	downloads := filepath.Join(mnt, "downloads")
	// The staging folder exists, as after any earlier transfer.
	if err := os.MkdirAll(filepath.Join(downloads, StagingDir), 0o700); err != nil {
		t.Fatal(err)
	}
	r := newRigIn(t, downloads)
	const minFree = 64 << 20
	q := NewQuota(DiskLimits{MinFree: minFree, MaxStagedPerPeer: DefaultMaxStagedPerPeer})
	r.recv.Quota = q
	h := r.hostile()
	before := usageOf(t, mnt)
	room := before.avail - minFree // what offers may take
	tests := []struct {
		name      string
		size      uint64
		skipCheck bool // let it reach fallocate, which fails
	}{
		{"8 TiB", 8 << 40, false},
		{"one byte above free minus the reserve", room + 1, false},
		{"8 TiB past the free-space check", 8 << 40, true},
		{"more than all the blocks past the check", before.free*4096 + 1<<20, true}, // root's reserve too
	}
	skipCheck := func(skip bool) {
		q.mu.Lock()
		defer q.mu.Unlock()
		q.skipSpaceCheck = skip
	}
	for _, tt := range tests {
		skipCheck(tt.skipCheck)
		_, answer := h.offer(hostileOffer(tt.size, DefaultChunkSize))
		mustRefuse(t, tt.name, answer, CodeNoSpace)
		h.result()
		r.mustBeClean(tt.name)
		mustGiveBack(t, tt.name, mnt, before)
	}
	skipCheck(false)

	// Two offers of 60 % of the room each, at once: one gets in.
	var wg sync.WaitGroup
	answers := make(chan Frame, 2)
	for range 2 {
		wg.Go(func() {
			_, answer := h.offer(hostileOffer(room*3/5, DefaultChunkSize))
			answers <- answer
		})
	}
	wg.Wait()
	a, b := <-answers, <-answers
	if a.Type() == TypeAccept == (b.Type() == TypeAccept) {
		t.Fatalf("two offers that fit one at a time: %+v and %+v, want one accepted", a, b)
	}
	if refused := map[bool]Frame{true: b, false: a}[a.Type() == TypeAccept]; refused.Type() != TypeAbort || refused.(Abort).Code != CodeNoSpace {
		t.Fatalf("the offer that did not fit: %+v", refused)
	}
	h.result() // the refused one; the other waits for chunks
	if got := usageOf(t, mnt).avail; got < minFree {
		t.Fatalf("%d bytes free after a reservation, below the %d kept free", got, minFree)
	}

	data := make([]byte, 3*DefaultChunkSize+5)
	rand.Read(data)
	f, err := h.deliver(Offer{ID: newID(), ChunkSize: DefaultChunkSize, ModTime: time.Now(), Mode: 0o644, Name: "fits.bin"}, data)
	if end, ok := f.(EndAck); err != nil || !ok || end.Name != "fits.bin" {
		t.Fatalf("a file that fits: %+v, %v", f, err)
	}
	h.result()
	if got, err := os.ReadFile(filepath.Join(downloads, "fits.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the file that fits arrived with %d of %d bytes right (%v)", len(got), len(data), err)
	}
}
