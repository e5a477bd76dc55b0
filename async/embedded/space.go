package embedded

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ferrydev/ferry/async"
)

// Reserve is the free space the store keeps on its filesystem: Enqueue is
// refused (async.ErrFull) below it, so that Pebble never meets ENOSPC and
// the small writes of running tasks (lease, outcome, release) always fit.
type Reserve struct {
	// Bytes is the reserve in bytes (used when Percent is 0).
	Bytes int64
	// Percent is the reserve as a percentage of the filesystem's size.
	Percent float64
	// Off turns the reserve off.
	Off bool
}

// Reserve defaults: the smaller of reserveDefaultBytes and
// reserveDefaultPercent of the filesystem.
const (
	reserveDefaultBytes   = 256 << 20
	reserveDefaultPercent = 5
)

// bytes is the reserve on a filesystem of total bytes.
func (r Reserve) bytes(total uint64) uint64 {
	switch {
	case r.Off:
		return 0
	case r.Percent > 0:
		return uint64(float64(total) * r.Percent / 100)
	case r.Bytes > 0:
		return uint64(r.Bytes)
	}
	return min(reserveDefaultBytes, total*reserveDefaultPercent/100)
}

// How stale the free-space figure may get: it is measured again after
// spaceRecheck or after spaceRecheckBytes were submitted, whichever comes
// first, so a statfs is not made per Enqueue.
const (
	spaceRecheck      = 250 * time.Millisecond
	spaceRecheckBytes = 1 << 20
)

// space watches the free space of the data directory's filesystem.
type space struct {
	path    string
	reserve Reserve
	now     func() time.Time

	written atomic.Int64 // bytes submitted since the last statfs
	full    atomic.Bool
	free    atomic.Uint64
	min     atomic.Uint64

	last atomic.Int64 // unix nanoseconds of the last statfs
	mu   sync.Mutex   // one statfs at a time
}

// check returns whether the filesystem is below the reserve (never, with
// the reserve off), measuring again when the figure is stale. A failed statfs counts as not full (the
// store's own writes then report the real error).
func (s *space) check() bool {
	if s.fresh() {
		return s.full.Load()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.fresh() {
		s.measure() // unless another caller measured meanwhile
	}
	return s.full.Load()
}

func (s *space) fresh() bool {
	return s.written.Load() < spaceRecheckBytes && s.now().UnixNano()-s.last.Load() < int64(spaceRecheck)
}

// measure runs statfs; s.mu is held.
func (s *space) measure() {
	s.last.Store(s.now().UnixNano())
	s.written.Store(0)
	var st unix.Statfs_t
	if err := unix.Statfs(s.path, &st); err != nil {
		s.full.Store(false)
		return
	}
	free := st.Bavail * uint64(st.Bsize)
	reserve := s.reserve.bytes(st.Blocks * uint64(st.Bsize))
	s.free.Store(free)
	s.min.Store(reserve)
	s.full.Store(free < reserve)
}

// FreeBytes is the free space of the data directory's filesystem (as an
// unprivileged process may use it) and the reserve, measured at most
// spaceRecheck ago.
func (q *Queue) FreeBytes() (free, reserve uint64) {
	q.space.check()
	return q.space.free.Load(), q.space.min.Load()
}

// Full reports whether the data directory's filesystem is below the
// reserve (store.embedded.min_free): Enqueue then fails with
// async.ErrFull. It measures again when the figure is stale, so a caller
// polling it (readiness) sees space come back.
func (q *Queue) Full() bool { return q.space.check() }

// admit refuses an Enqueue of n bytes when the filesystem is below the
// reserve.
func (q *Queue) admit(n int) error {
	q.space.written.Add(int64(n))
	if !q.space.check() {
		return nil
	}
	return fmt.Errorf("embedded: enqueue: %d bytes free in %s, below the reserve of %d (store.embedded.min_free): %w",
		q.space.free.Load(), q.space.path, q.space.min.Load(), async.ErrFull)
}
