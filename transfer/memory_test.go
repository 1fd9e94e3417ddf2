package transfer

import (
	"bufio"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// heapSampleEvery is how often heapWatch reads the heap: a 256 MiB hash
// list lives for at least the few milliseconds a refused offer takes.
const heapSampleEvery = time.Millisecond

// heapWatch samples the heap while a test runs, so that a peak between
// two garbage collections is seen, not only what is left at the end.
type heapWatch struct {
	base runtime.MemStats
	peak atomic.Uint64 // the highest HeapInuse seen
	stop chan struct{}
	done chan struct{}
}

func watchHeap(t testing.TB) *heapWatch {
	t.Helper()
	runtime.GC()
	w := &heapWatch{stop: make(chan struct{}), done: make(chan struct{})}
	runtime.ReadMemStats(&w.base)
	w.peak.Store(w.base.HeapInuse)
	go func() {
		defer close(w.done)
		tick := time.NewTicker(heapSampleEvery)
		defer tick.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > w.peak.Load() {
				w.peak.Store(m.HeapInuse)
			}
			select {
			case <-tick.C:
			case <-w.stop:
				return
			}
		}
	}()
	t.Cleanup(func() { w.end() })
	return w
}

// end stops sampling and returns how much HeapInuse grew at its peak and
// how much HeapSys (what the heap took from the system) grew.
func (w *heapWatch) end() (peak, sys int64) {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(w.peak.Load()) - int64(w.base.HeapInuse), int64(m.HeapSys) - int64(w.base.HeapSys)
}

// procStatus returns a line of /proc/self/status, such as "VmHWM", or
// "?" where there is none.
func procStatus(key string) string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// maxHeapGrowth bounds what a hostile peer's flood may cost the
// receiver's heap: a few MiB of stream state and buffers, nowhere near a
// chunk of the largest size per transfer.
const maxHeapGrowth = 64 << 20

// TestHostilePeerCannotExhaustMemory: a peer offers, all at once, 32
// files of 128 TiB in 16 MiB chunks (each offer used to allocate a
// 256 MiB hash list and a 1 MiB bitmap before any disk check: 24 of them
// took an agent from 22 MB to 3.9 GB), and 32 files of 100 bytes whose
// CHUNK frames claim 16 MiB (each made the reader allocate 16 MiB).
// Every one is refused, and the heap stays within maxHeapGrowth.
func TestHostilePeerCannotExhaustMemory(t *testing.T) {
	r := newRig(t)
	h := r.hostile()
	// As many as the agent lets one peer run at once.
	const offers = 32
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) // resets VmHWM where the kernel allows
	rssBefore, hwmBefore := procStatus("VmRSS"), procStatus("VmHWM")
	w := watchHeap(t)
	var wg sync.WaitGroup
	for range offers {
		wg.Go(func() {
			s := h.open()
			if err := s.send(hostileOffer(hugeSize, MaxChunkSize)); err != nil {
				t.Errorf("offer: %v", err)
				return
			}
			if f, err := s.next(); err != nil || f.Type() != TypeAbort || f.(Abort).Code != CodeNoSpace {
				t.Errorf("answer to a 128 TiB offer: %+v, %v", f, err)
			}
		})
		wg.Go(func() {
			s := h.open()
			if err := s.send(hostileOffer(100, MaxChunkSize)); err != nil {
				t.Errorf("offer: %v", err)
				return
			}
			if f, err := s.next(); err != nil || f.Type() != TypeAccept {
				t.Errorf("answer to a 100-byte offer: %+v, %v", f, err)
				return
			}
			s.header(TypeChunk, chunkFixedLen+MaxChunkSize)
			s.Write(make([]byte, 64<<10)) // the start of the lie; the receiver stops reading
			if f, err := s.next(); err != nil || f.Type() != TypeAbort || f.(Abort).Code != CodeProtocol {
				t.Errorf("answer to a 16 MiB CHUNK of a 100-byte file: %+v, %v", f, err)
			}
		})
	}
	wg.Wait()
	for range 2 * offers {
		h.result()
	}
	peak, sys := w.end()
	t.Logf("%d offers of 128 TiB and %d CHUNK frames claiming 16 MiB: heap in use grew by %.1f MiB at its peak, heap from the system by %.1f MiB; VmRSS %s -> %s, VmHWM %s -> %s",
		offers, offers, float64(peak)/(1<<20), float64(sys)/(1<<20), rssBefore, procStatus("VmRSS"), hwmBefore, procStatus("VmHWM"))
	if peak > maxHeapGrowth || sys > maxHeapGrowth {
		t.Fatalf("the heap grew by %d bytes at its peak (%d from the system), want at most %d", peak, sys, maxHeapGrowth)
	}
}
