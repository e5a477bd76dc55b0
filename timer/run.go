package timer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferrydev/ferry/async"
)

// Retry backoff of a tick whose submit failed (store unavailable or full,
// tenant at max_queued): it is retried while it is within MaxLateness and
// no later tick supersedes it.
const (
	retryMin = time.Second
	retryMax = 30 * time.Second
)

// lateGrace is how late a tick may come to be submitted while the timer
// runs (a slow store, a busy machine) and still run whatever CatchUp
// says; a tick later than that was missed.
const lateGrace = 10 * time.Second

// Tick results, the values of ferry_timer_ticks_total's result label.
const (
	// ResultFired: the tick's task was created on time (the tick came
	// while the timer ran).
	ResultFired = "fired"
	// ResultCaughtUp: the task of a tick missed before the timer started
	// or resumed was created by the catch-up policy.
	ResultCaughtUp = "caught_up"
	// ResultDuplicate: the tick's task existed already (another node or
	// an earlier run of this one made it): nothing new.
	ResultDuplicate = "duplicate"
	// ResultSkipped: the tick did not run: it came while paused, the
	// catch-up policy passed it over, or it was older than MaxLateness.
	ResultSkipped = "skipped"
	// ResultFailed: every submit of the tick failed until it was too
	// late (or the failure cannot be retried).
	ResultFailed = "failed"
)

// run is the state of one Run.
type run struct {
	*Timer
	// cursor: every tick at or before it is decided (submitted or
	// skipped).
	cursor time.Time
	// counted: every tick at or before it has been counted in the
	// metrics. Ticks before the start are not counted as skipped: an
	// earlier run may have run them.
	counted time.Time
	// since is when the timer started or last resumed: ticks before it
	// were missed (caught_up), ticks after it fired.
	since time.Time
	// fresh: the timer has just started or resumed (catch_up none drops
	// what is due then).
	fresh   bool
	paused  bool
	failing time.Time     // the tick whose submit failed last
	backoff time.Duration // its next retry delay
	retryAt time.Time
}

// Run ticks until ctx ends, then returns nil (an error only when the
// timer is running already). A tick's submit that fails is retried while
// the tick is within MaxLateness; its error is LastError.
func (t *Timer) Run(ctx context.Context) error {
	if !t.running.CompareAndSwap(false, true) {
		return fmt.Errorf("timer %s: already running", t.cfg.Name)
	}
	defer t.running.Store(false)
	now := t.cfg.Clock.Now()
	r := &run{Timer: t, counted: now, since: now, fresh: true, paused: t.Paused()}
	r.cursor = now.Add(-t.cfg.MaxLateness)
	if t.cfg.CatchUp == CatchUpNone {
		r.cursor = now
	}
	t.log.Info("timer trigger started", "catch_up", string(t.cfg.CatchUp), "max_lateness", t.cfg.MaxLateness,
		"next_tick", t.cfg.Schedule.Next(now))
	for ctx.Err() == nil {
		now = t.cfg.Clock.Now()
		if paused := t.Paused(); paused != r.paused {
			r.paused = paused
			if !paused { // resumed
				r.since, r.fresh = now, true
			}
		}
		if r.paused {
			r.whilePaused(now)
		} else {
			r.due(ctx, now)
		}
		next := t.cfg.Schedule.Next(now)
		t.setNext(next)
		wake := next
		switch {
		case r.paused:
		case !r.retryAt.IsZero():
			if next.IsZero() || r.retryAt.Before(next) {
				wake = r.retryAt
			}
		case r.cursor.After(now):
			// The clock went back: the ticks up to cursor are decided.
			wake = t.cfg.Schedule.Next(r.cursor)
		}
		t.wait(ctx, wake)
	}
	return nil
}

// wait blocks until wake (zero: forever), ctx ends or the pause state
// changes.
func (t *Timer) wait(ctx context.Context, wake time.Time) {
	var fire <-chan time.Time
	if !wake.IsZero() {
		c, stop := t.cfg.Clock.After(max(wake.Sub(t.cfg.Clock.Now()), 0))
		defer stop()
		fire = c
	}
	select {
	case <-ctx.Done():
	case <-t.changed:
	case <-fire:
	}
}

// whilePaused counts the ticks that came while paused as skipped; they
// stay undecided (a resume may catch them up) until they are older than
// MaxLateness.
func (r *run) whilePaused(now time.Time) {
	for at := r.cfg.Schedule.Next(r.counted); !at.IsZero() && !at.After(now); at = r.cfg.Schedule.Next(at) {
		r.count(at, ResultSkipped)
	}
	if stale := now.Add(-r.cfg.MaxLateness); r.cursor.Before(stale) {
		r.cursor = stale
	}
	r.retryAt = time.Time{}
}

// due decides the ticks in (cursor, now]: those older than MaxLateness
// are skipped; of the others, CatchUp picks which run. Just after the
// start or a resume, the policy takes every due tick (they were missed);
// while the timer runs, a backlog comes from a slow submit or a stalled
// process, and a tick at most lateGrace late still runs whatever the
// policy, later ones are missed ones.
func (r *run) due(ctx context.Context, now time.Time) {
	stale := now.Add(-r.cfg.MaxLateness)
	missed := func(at time.Time) bool { return r.fresh || now.Sub(at) > lateGrace }
	var ticks []time.Time
	for at := r.cfg.Schedule.Next(r.cursor); !at.IsZero() && !at.After(now); at = r.cfg.Schedule.Next(at) {
		if !at.After(stale) {
			r.decide(at, ResultSkipped)
			continue
		}
		if r.cfg.CatchUp != CatchUpAll {
			// A missed tick with a later one behind it gives way.
			n := 0
			for n < len(ticks) && missed(ticks[n]) {
				r.decide(ticks[n], ResultSkipped)
				n++
			}
			ticks = append(ticks[:0], ticks[n:]...)
		}
		ticks = append(ticks, at)
	}
	if r.fresh && r.cfg.CatchUp == CatchUpNone {
		kept := ticks[:0]
		for _, at := range ticks {
			if at.Before(r.since) {
				r.decide(at, ResultSkipped)
			} else {
				kept = append(kept, at)
			}
		}
		ticks = kept
	}
	r.fresh = false
	r.retryAt = time.Time{}
	for _, at := range ticks {
		if !r.submit(ctx, at, now) {
			return // retried at r.retryAt; the later ticks wait for it
		}
	}
	if r.cursor.Before(now) {
		r.cursor = now
	}
}

// decide records the tick as decided with result: counted unless it was
// counted already (while paused) or it is a skip from before the start.
func (r *run) decide(at time.Time, result string) {
	if at.After(r.cursor) {
		r.cursor = at
	}
	if result == ResultSkipped && at.Equal(r.failing) {
		result = ResultFailed
	}
	if result != ResultSkipped || at.After(r.counted) {
		r.count(at, result)
	}
}

// count adds the tick to its result's count.
func (r *run) count(at time.Time, result string) {
	if at.After(r.counted) {
		r.counted = at
	}
	r.metrics.tick(result)
	r.log.Debug("timer tick", "tick", at, "result", result)
}

// submit submits the tick's task and reports whether the tick is
// decided; when not, the tick is retried at r.retryAt.
func (r *run) submit(ctx context.Context, at, now time.Time) bool {
	_, created, err := r.cfg.Submitter.Submit(ctx, async.Submission{
		ID: TaskID(r.cfg.Tenant, r.cfg.Name, at), Tenant: r.cfg.Tenant, Function: r.cfg.Function,
		Payload: r.cfg.Payload, ContentType: ContentType, IdempotencyKey: IdempotencyKey(r.cfg.Name, at),
		EventTime: at,
	})
	var conflict *async.IdempotencyConflictError
	var limited *async.RateLimitError
	switch {
	case err == nil || errors.Is(err, async.ErrConflict):
		// ErrConflict: the tick's task id is taken, by the tick's task.
		r.setLastError(nil)
		r.failing, r.backoff = time.Time{}, 0
		result := ResultFired
		switch {
		case !created:
			result = ResultDuplicate
		case at.Before(r.since):
			result = ResultCaughtUp
		}
		r.decide(at, result)
		return true
	case ctx.Err() != nil:
		return false // shutting down: the tick stays undecided, a restart catches it up
	case errors.As(err, &conflict):
		// The key names another function's task: the trigger pointed at
		// another function when the tick ran. Retrying cannot help.
		r.setLastError(err)
		r.log.Warn("timer tick not submitted: its idempotency key names another function's task", "tick", at, "error", err)
		r.decide(at, ResultFailed)
		return true
	}
	r.setLastError(err)
	if !at.Equal(r.failing) {
		r.failing, r.backoff = at, retryMin
		r.log.Warn("timer tick submit failed; retrying", "tick", at, "error", err)
	}
	wait := r.backoff
	if errors.As(err, &limited) {
		wait = max(limited.Wait, 10*time.Millisecond)
	} else {
		r.backoff = min(2*r.backoff, retryMax)
	}
	r.retryAt = now.Add(wait)
	r.cursor = at.Add(-time.Nanosecond)
	return false
}
