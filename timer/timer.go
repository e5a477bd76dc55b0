// Package timer runs timer triggers: a cron schedule in a time zone whose
// every tick submits one task to a function, through the same path as the
// API (admission rates, max_queued, then the dispatcher's limits, fair
// share, retries, destinations and loop guard).
//
// # Exactly one task per tick
//
// A tick's task has an idempotency key and an id derived from the trigger
// and the tick's instant ("timer:<trigger>:<unix seconds>"), so the store
// keeps one task per tick however many nodes run the trigger and however
// often a node restarts: every node submits every tick, the first submit
// creates the task and the others find it (a duplicate). The store keeps
// an idempotency key for 24h, which bounds max_lateness. The timer keeps
// no state of its own: after a restart or a pause, the catch-up policy
// re-submits missed ticks and the keys make those that already ran a
// no-op.
//
// # Catch-up
//
// Ticks missed while the trigger was not running (Ferry down, the trigger
// paused; or, while it runs, ticks it comes to more than 10s late) run by
// CatchUp: none runs only ticks from
// the start or resume on; last runs the latest missed tick within
// MaxLateness; all runs every missed tick within MaxLateness, oldest
// first. A tick older than MaxLateness never runs.
package timer

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ferrydev/ferry/async"
)

// CatchUp is which missed ticks run once the timer runs again.
type CatchUp string

// Catch-up policies.
const (
	// CatchUpNone runs only the ticks from the start or resume on.
	CatchUpNone CatchUp = "none"
	// CatchUpLast runs the latest missed tick within MaxLateness.
	CatchUpLast CatchUp = "last"
	// CatchUpAll runs every missed tick within MaxLateness, oldest first.
	CatchUpAll CatchUp = "all"
)

// Defaults.
const (
	// DefaultMaxLateness is how late a missed tick may still run.
	DefaultMaxLateness = time.Hour
	// IdempotencyWindow is how long the stores keep an idempotency key
	// (and so keep a tick from running twice): MaxLateness may not exceed
	// it.
	IdempotencyWindow = 24 * time.Hour
	// Kind is what Kind returns.
	Kind = "timer"
	// ContentType is the content type of every tick's task.
	ContentType = "application/json"
)

// Submitter stores a task; *async.Submitter is the one the API uses.
type Submitter interface {
	Submit(ctx context.Context, s async.Submission) (*async.Task, bool, error)
}

// Clock is the timer's time source; tests use a fake one.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed, and a
	// function that stops it.
	After(d time.Duration) (<-chan time.Time, func())
}

// Config configures one timer trigger.
type Config struct {
	// Name is the trigger's name: part of every tick's idempotency key,
	// so renaming a trigger starts its ticks afresh.
	Name string
	// Tenant and Function are the function the ticks' tasks run.
	Tenant, Function string
	Schedule         *Schedule
	// Payload is every tick's task body (JSON). Defaults to {}.
	Payload []byte
	// CatchUp defaults to CatchUpLast.
	CatchUp CatchUp
	// MaxLateness defaults to DefaultMaxLateness. It must not exceed the
	// store's idempotency window (24h).
	MaxLateness time.Duration
	Submitter   Submitter
	Metrics     *Metrics
	Logger      *slog.Logger
	// Clock defaults to the system clock.
	Clock Clock
}

// Timer runs one timer trigger. Its methods are safe for concurrent use.
type Timer struct {
	cfg     Config
	log     *slog.Logger
	metrics *timerMetrics

	running atomic.Bool
	paused  atomic.Bool
	changed chan struct{} // signalled when paused changes
	next    atomic.Int64  // unix seconds of the next tick; 0: none
	mu      sync.Mutex
	lastErr string
}

// New returns the Timer of cfg; it ticks once Run runs.
func New(cfg Config) (*Timer, error) {
	switch {
	case cfg.Name == "":
		return nil, errors.New("timer: a name is required")
	case cfg.Tenant == "" || cfg.Function == "":
		return nil, fmt.Errorf("timer %s: a tenant and a function are required", cfg.Name)
	case cfg.Schedule == nil:
		return nil, fmt.Errorf("timer %s: a schedule is required", cfg.Name)
	case cfg.Submitter == nil:
		return nil, fmt.Errorf("timer %s: a submitter is required", cfg.Name)
	case cfg.MaxLateness < 0 || cfg.MaxLateness > IdempotencyWindow:
		return nil, fmt.Errorf("timer %s: max lateness %s is not from 0 to %s", cfg.Name, cfg.MaxLateness, IdempotencyWindow)
	}
	switch cfg.CatchUp {
	case "":
		cfg.CatchUp = CatchUpLast
	case CatchUpNone, CatchUpLast, CatchUpAll:
	default:
		return nil, fmt.Errorf("timer %s: catch-up %q is not none, last or all", cfg.Name, cfg.CatchUp)
	}
	if cfg.MaxLateness == 0 {
		cfg.MaxLateness = DefaultMaxLateness
	}
	if len(cfg.Payload) == 0 {
		cfg.Payload = []byte("{}")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock(nil)
	}
	t := &Timer{
		cfg: cfg, log: cfg.Logger.With("trigger", cfg.Name), metrics: cfg.Metrics.timer(cfg.Name),
		changed: make(chan struct{}, 1),
	}
	t.setNext(cfg.Schedule.Next(cfg.Clock.Now()))
	return t, nil
}

// Name is the trigger's name.
func (t *Timer) Name() string { return t.cfg.Name }

// Function is the name of the function the trigger invokes.
func (t *Timer) Function() string { return t.cfg.Function }

// Tenant is the tenant of the trigger's function.
func (t *Timer) Tenant() string { return t.cfg.Tenant }

// Kind is "timer".
func (t *Timer) Kind() string { return Kind }

// Connected reports whether Run is running (a timer has no broker to be
// disconnected from).
func (t *Timer) Connected() bool { return t.running.Load() }

// SetPaused pauses or resumes the timer. While paused no tick is
// submitted: each counts as skipped when it comes. On resume, CatchUp
// decides about the ticks that came while paused (with last, the latest
// of them within MaxLateness runs). The state is this process's only.
func (t *Timer) SetPaused(paused bool) {
	if t.paused.Swap(paused) != paused {
		select {
		case t.changed <- struct{}{}:
		default:
		}
		t.log.Info("timer trigger paused or resumed", "paused", paused)
	}
}

// Paused reports whether the timer is paused.
func (t *Timer) Paused() bool { return t.paused.Load() }

// NextTick is the schedule's next tick after now (also while paused: the
// tick that would come); zero when the schedule has none.
func (t *Timer) NextTick() time.Time {
	if s := t.next.Load(); s != 0 {
		return time.Unix(s, 0).UTC()
	}
	return time.Time{}
}

// LastError is the error of the last submit, "" when it worked.
func (t *Timer) LastError() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastErr
}

func (t *Timer) setLastError(err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	t.mu.Lock()
	t.lastErr = msg
	t.mu.Unlock()
}

func (t *Timer) setNext(at time.Time) {
	var s int64
	if !at.IsZero() {
		s = at.Unix()
	}
	t.next.Store(s)
	t.metrics.setNext(at)
}

// IdempotencyKey is the idempotency key of the trigger's tick at.
func IdempotencyKey(trigger string, at time.Time) string {
	return "timer:" + trigger + ":" + strconv.FormatInt(at.Unix(), 10)
}

// TaskID is the task id of the tenant's trigger's tick at: a UUID in the
// version 7 layout whose time is the tick and whose other bits come from
// a hash of tenant, trigger and tick, so that it is the same on every
// node and every restart (ce-id) and sorts by tick.
func TaskID(tenant, trigger string, at time.Time) string {
	h := sha256.New()
	for _, s := range []string{tenant, trigger, strconv.FormatInt(at.Unix(), 10)} {
		h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	var u uuid.UUID
	copy(u[:], h.Sum(nil))
	ms := uint64(at.UnixMilli())
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = u[6]&0x0f | 0x70 // version 7
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u.String()
}

// SystemClock is the system's timers with now as the time (nil:
// time.Now): a node whose clock is set off by WithClock ticks by it.
func SystemClock(now func() time.Time) Clock {
	if now == nil {
		now = time.Now
	}
	return systemClock{now}
}

// systemClock is the real clock.
type systemClock struct{ now func() time.Time }

func (c systemClock) Now() time.Time { return c.now() }

func (systemClock) After(d time.Duration) (<-chan time.Time, func()) {
	tm := time.NewTimer(d)
	return tm.C, func() { tm.Stop() }
}
