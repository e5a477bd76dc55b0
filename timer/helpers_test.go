package timer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferrydev/ferry/async"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeClock moves only when told. After registers a waiter that fires
// when the clock reaches its time.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters map[*waiter]bool
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock {
	return &fakeClock{now: now, waiters: map[*waiter]bool{}}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := &waiter{at: c.now.Add(d), ch: make(chan time.Time, 1)}
	if d <= 0 {
		w.ch <- c.now
		return w.ch, func() {}
	}
	c.waiters[w] = true
	return w.ch, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.waiters, w)
	}
}

// set moves the clock to now and fires the waiters due by then.
func (c *fakeClock) set(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
	for w := range c.waiters {
		if !w.at.After(now) {
			w.ch <- now
			delete(c.waiters, w)
		}
	}
}

// pending counts the waiters in the future.
func (c *fakeClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// waitIdle waits until n timers wait for the future (they have done what
// was due).
func (c *fakeClock) waitIdle(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for c.pending() != n {
		if time.Now().After(deadline) {
			t.Fatalf("timers did not settle: %d waiting, want %d", c.pending(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// memSubmitter keeps one task per idempotency key, like a store, and
// fails while fail returns an error.
type memSubmitter struct {
	mu    sync.Mutex
	subs  []async.Submission // created, in order
	keys  map[string]bool
	calls int
	fail  func(call int) error
}

func newMemSubmitter() *memSubmitter { return &memSubmitter{keys: map[string]bool{}} }

func (m *memSubmitter) Submit(_ context.Context, s async.Submission) (*async.Task, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.fail != nil {
		if err := m.fail(m.calls); err != nil {
			return nil, false, err
		}
	}
	task := &async.Task{ID: s.ID, Function: s.Function, IdempotencyKey: s.IdempotencyKey, EventTime: s.EventTime}
	if m.keys[s.IdempotencyKey] {
		return task, false, nil
	}
	m.keys[s.IdempotencyKey] = true
	m.subs = append(m.subs, s)
	return task, true, nil
}

// snapshot copies the created submissions.
func (m *memSubmitter) snapshot() []async.Submission {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]async.Submission(nil), m.subs...)
}

// callCount is how many submits were made.
func (m *memSubmitter) callCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls
}

// ticks lists the event times of the created tasks, in order.
func (m *memSubmitter) ticks() []time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]time.Time, len(m.subs))
	for i, s := range m.subs {
		out[i] = s.EventTime
	}
	return out
}

// bundle is one timer under test.
type bundle struct {
	timer   *Timer
	clock   *fakeClock
	sub     *memSubmitter
	metrics *Metrics
	stop    func()
}

// start runs a timer of cfg (Name, Tenant, Function, Submitter, Clock,
// Metrics and Logger filled in when unset) from now on the clock.
func start(t *testing.T, cfg Config, clock *fakeClock, sub Submitter) *bundle {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "tick"
	}
	cfg.Tenant, cfg.Function = "acme", "report"
	cfg.Submitter, cfg.Clock, cfg.Logger = sub, clock, discard
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	tm, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tm.Run(ctx) }()
	b := &bundle{timer: tm, clock: clock, metrics: cfg.Metrics}
	b.sub, _ = sub.(*memSubmitter)
	var once sync.Once
	b.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(b.stop)
	return b
}

// count is the timer's ticks with result.
func (b *bundle) count(result string) int {
	return int(testutil.ToFloat64(b.metrics.ticks.WithLabelValues(b.timer.Name(), result)))
}

// counts formats every result's count, for messages.
func (b *bundle) counts() string {
	s := ""
	for _, r := range results {
		s += fmt.Sprintf("%s=%d ", r, b.count(r))
	}
	return s
}

func mustSchedule(t testing.TB, expr string, loc *time.Location) *Schedule {
	t.Helper()
	s, err := ParseSchedule(expr, loc)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func berlin(t testing.TB) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

var errDown = fmt.Errorf("store down: %w", async.ErrUnavailable)

// sameTimes reports whether a and b hold the same instants.
func sameTimes(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// eventually polls cond until it holds, or fails after 5s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
