package queuetest

import (
	"fmt"
	"sync"
	"time"
)

// start is the time every Clock starts at: a whole second, in UTC.
var start = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// Clock is the suite's fake clock: it moves only when told, in whole
// milliseconds, so a store that keeps times at millisecond precision keeps
// them exactly. The zero value reads 2025-01-02T03:04:05Z, a whole
// second. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	d  time.Duration // since start
}

// Now returns the clock's time, in UTC.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return start.Add(c.d)
}

// Advance moves the clock forward by d, which must be a whole number of
// milliseconds and not negative; it panics otherwise (a mistake in the
// suite, never in the store under test).
func (c *Clock) Advance(d time.Duration) {
	if d < 0 || d%time.Millisecond != 0 {
		panic(fmt.Sprintf("queuetest: Clock.Advance(%v): want a non-negative whole number of milliseconds", d))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.d += d
}
