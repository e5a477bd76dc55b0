// Package gcfloor keeps Go's garbage collector from running while the live
// heap is below a floor (server.gc_heap_floor), trading up to that much
// memory for far fewer collections under load.
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// The heap floor keeps Go's garbage collector from running while the live
// heap is small. With GOGC=100 a collection starts each time the heap
// doubles; Ferry's live heap is often a few MB to a few tens of MB (its
// index, a small backlog) while it allocates a task record or a message
// per request, so under load it collects several times a second, and a
// collection that meets a burst of allocation (a store compaction, a
// batch) stalls requests in mark assists and sweeping. Measured with the
// latency probe of `make bench` (about 3,900 tasks/s, half of the peak,
// 5 runs each, interleaved): submit → start p99 17–116 ms (median 22 ms)
// with GOGC=100, 7.0–112 ms (median 7.6 ms) with a 64 MiB floor.
//
// While running, the floor sets GOGC so that the next heap goal is
// max(2 × live heap, floor), which is what a heap ballast did: it costs
// at most floor bytes of memory, and once the live heap passes floor/2
// the collector runs as with GOGC=100. Go's memory limit (GOMEMLIMIT)
// still applies. An operator's GOGC wins: with GOGC set, the floor is off.
//
// The floor is process-wide: Servers in one process share it (the largest
// floor of those started since it was last off), and the last one to stop
// restores GOGC.
var heapFloor struct {
	mu      sync.Mutex
	servers int    // running Servers with a floor
	floor   uint64 // the largest of their floors
	prev    int    // GOGC before the first started
	percent int    // GOGC set last
	gen     uint64 // bumped when the last stops: older cleanups end
}

const (
	liveMetric    = "/gc/heap/live:bytes"
	maxGCPercent  = 10000   // bounds GOGC when the live heap is tiny
	minLiveSample = 1 << 20 // a live heap read as smaller counts as 1 MiB
)

// Start applies a heap floor of floor bytes until stop is called.
// It does nothing (and stop does nothing) when floor is 0 or GOGC is set
// in the environment.
func Start(floor uint64) (stop func(), active bool) {
	if floor == 0 || os.Getenv("GOGC") != "" {
		return func() {}, false
	}
	h := &heapFloor
	h.mu.Lock()
	defer h.mu.Unlock()
	h.servers++
	h.floor = max(h.floor, floor)
	if h.servers == 1 {
		h.percent = gcPercentFor(liveHeap(), h.floor)
		h.prev = debug.SetGCPercent(h.percent)
		armHeapFloor(h.gen)
	} else {
		retuneLocked()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.servers--
			if h.servers == 0 {
				h.gen++
				h.floor = 0
				debug.SetGCPercent(h.prev)
			}
		})
	}, true
}

// armHeapFloor makes the end of the next collection retune GOGC: a
// sentinel that nothing references gets a cleanup, which runs after the
// collection that frees it and arms the next one.
func armHeapFloor(gen uint64) {
	sentinel := new([64]byte) // not a tiny allocation: its cleanup runs
	runtime.AddCleanup(sentinel, func(gen uint64) {
		h := &heapFloor
		h.mu.Lock()
		defer h.mu.Unlock()
		if gen != h.gen || h.servers == 0 {
			return // stopped since
		}
		retuneLocked()
		armHeapFloor(gen)
	}, gen)
}

// retuneLocked sets GOGC from the live heap, unless it is within 5 % of
// what is set. heapFloor.mu must be held.
func retuneLocked() {
	h := &heapFloor
	p := gcPercentFor(liveHeap(), h.floor)
	if d := p - h.percent; d*20 > h.percent || -d*20 > h.percent {
		debug.SetGCPercent(p)
		h.percent = p
	}
}

// gcPercentFor is the GOGC whose heap goal, live × (1 + GOGC/100), is
// max(2 × live, floor), within [100, maxGCPercent].
func gcPercentFor(live, floor uint64) int {
	live = max(live, minLiveSample)
	if floor <= 2*live {
		return 100
	}
	return int(min(floor*100/live-100, maxGCPercent))
}

// liveHeap is the heap marked live by the latest collection (0 before the
// first).
func liveHeap() uint64 {
	s := []metrics.Sample{{Name: liveMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
