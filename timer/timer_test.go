package timer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/embedded"
)

// t0 is a whole minute, UTC.
var t0 = time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)

func minutes(ms ...int) []time.Time {
	out := make([]time.Time, len(ms))
	for i, m := range ms {
		out[i] = t0.Add(time.Duration(m) * time.Minute)
	}
	return out
}

// TestCatchUpAtStart: what a timer started at 10:35:30 runs of the ticks
// it missed, by policy and max_lateness; then it ticks on time.
func TestCatchUpAtStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, expr  string
		catchUp     CatchUp
		maxLateness time.Duration
		want        []time.Time // the ticks submitted at the start
		result      string
	}{
		{"NoneRunsNothing", "*/10 * * * *", CatchUpNone, time.Hour, nil, ""},
		{"LastRunsTheLatest", "*/10 * * * *", CatchUpLast, time.Hour, minutes(30), ResultCaughtUp},
		{"DefaultIsLast", "*/10 * * * *", "", 0, minutes(30), ResultCaughtUp},
		{"AllRunsEveryOneOldestFirst", "*/10 * * * *", CatchUpAll, time.Hour, minutes(-20, -10, 0, 10, 20, 30), ResultCaughtUp},
		{"AllWithinMaxLateness", "*/10 * * * *", CatchUpAll, 16 * time.Minute, minutes(20, 30), ResultCaughtUp},
		{"LastTooLate", "0 * * * *", CatchUpLast, 30 * time.Minute, nil, ""},
		{"LastJustInTime", "0 * * * *", CatchUpLast, 36 * time.Minute, minutes(0), ResultCaughtUp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock(t0.Add(35*time.Minute + 30*time.Second))
			b := start(t, Config{Schedule: mustSchedule(t, tt.expr, time.UTC), CatchUp: tt.catchUp, MaxLateness: tt.maxLateness},
				clock, newMemSubmitter())
			clock.waitIdle(t, 1)
			if got := b.sub.ticks(); !sameTimes(got, tt.want) {
				t.Fatalf("submitted at start %v, want %v", got, tt.want)
			}
			if tt.result != "" && b.count(tt.result) != len(tt.want) {
				t.Errorf("counts %s; want %s=%d", b.counts(), tt.result, len(tt.want))
			}
			if n := b.count(ResultSkipped); n != 0 {
				t.Errorf("skipped = %d at start; ticks before the start are never counted skipped", n)
			}
			// The next tick runs on time.
			next := b.timer.NextTick()
			if want := tt.want; next.IsZero() || next.Before(clock.Now()) {
				t.Fatalf("NextTick = %v (want after %v; submitted %v)", next, clock.Now(), want)
			}
			clock.set(next)
			clock.waitIdle(t, 1)
			got := b.sub.ticks()
			if len(got) != len(tt.want)+1 || !got[len(got)-1].Equal(next) || b.count(ResultFired) != 1 {
				t.Errorf("after the next tick: submitted %v, counts %s; want %v fired", got, b.counts(), next)
			}
		})
	}
}

// TestSubmission: a tick's task carries the payload as JSON, the tick as
// its event time (ce-time), hops 0, and an id and idempotency key made of
// the trigger and the tick.
func TestSubmission(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0.Add(-time.Second))
	sub := newMemSubmitter()
	b := start(t, Config{Name: "nightly", Schedule: mustSchedule(t, "@every 1m", time.UTC), Payload: []byte(`{"a":1}`)}, clock, sub)
	clock.waitIdle(t, 1)
	clock.set(t0)
	clock.waitIdle(t, 1)
	subs := sub.snapshot()
	if len(subs) != 2 { // the caught-up 09:59 tick, then 10:00
		t.Fatalf("submissions %+v; want 2", subs)
	}
	s := subs[1]
	want := async.Submission{
		ID: TaskID("acme", "nightly", t0), Tenant: "acme", Function: "report", Payload: []byte(`{"a":1}`),
		ContentType: "application/json", IdempotencyKey: fmt.Sprintf("timer:nightly:%d", t0.Unix()), EventTime: t0,
	}
	if fmt.Sprint(s) != fmt.Sprint(want) {
		t.Errorf("submission\n got %+v\nwant %+v", s, want)
	}
	if b.timer.LastError() != "" || !b.timer.Connected() || b.timer.Kind() != "timer" || b.timer.Function() != "report" {
		t.Errorf("LastError %q Connected %v Kind %q Function %q", b.timer.LastError(), b.timer.Connected(), b.timer.Kind(), b.timer.Function())
	}
	// A default payload is {}.
	b2 := start(t, Config{Name: "plain", Schedule: mustSchedule(t, "@every 1m", time.UTC), CatchUp: CatchUpLast}, newFakeClock(t0), newMemSubmitter())
	b2.clock.waitIdle(t, 1)
	if p := string(b2.sub.snapshot()[0].Payload); p != "{}" {
		t.Errorf("default payload %q, want {}", p)
	}
	b.stop()
	if b.timer.Connected() {
		t.Error("Connected after Run returned")
	}
}

func TestTaskID(t *testing.T) {
	t.Parallel()
	a := TaskID("acme", "nightly", t0)
	if a != TaskID("acme", "nightly", t0) {
		t.Fatal("TaskID is not deterministic")
	}
	for _, other := range []string{TaskID("acme", "nightly", t0.Add(time.Second)), TaskID("acme", "nightly2", t0), TaskID("acme2", "nightly", t0)} {
		if other == a {
			t.Errorf("TaskID collides: %s", a)
		}
	}
	if len(a) != 36 || a[14] != '7' {
		t.Errorf("TaskID %s is not a version 7 UUID", a)
	}
	if later := TaskID("acme", "nightly", t0.Add(time.Second)); later < a {
		t.Errorf("TaskIDs do not sort by tick: %s < %s", later, a)
	}
}

// TestRestartIsIdempotent: a timer started again on the same store
// re-submits the latest tick (catch_up last), which the idempotency key
// makes a duplicate: no second task.
func TestRestartIsIdempotent(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0.Add(-30 * time.Second))
	sub := newMemSubmitter()
	b := start(t, Config{Schedule: mustSchedule(t, "* * * * *", time.UTC)}, clock, sub)
	clock.waitIdle(t, 1)
	for m := 0; m <= 2; m++ {
		clock.set(t0.Add(time.Duration(m) * time.Minute))
		clock.waitIdle(t, 1)
	}
	b.stop()
	clock.set(t0.Add(2*time.Minute + 10*time.Second))
	b2 := start(t, Config{Schedule: mustSchedule(t, "* * * * *", time.UTC)}, clock, sub)
	clock.waitIdle(t, 1)
	if want := minutes(-1, 0, 1, 2); !sameTimes(sub.ticks(), want) {
		t.Errorf("tasks %v, want %v", sub.ticks(), want)
	}
	if b2.count(ResultDuplicate) != 1 || b2.count(ResultCaughtUp) != 0 {
		t.Errorf("restart counts %s; want duplicate=1", b2.counts())
	}
}

// TestPauseResume: while paused ticks are skipped; on resume the policy
// decides about them.
func TestPauseResume(t *testing.T) {
	t.Parallel()
	tests := []struct {
		catchUp     CatchUp
		maxLateness time.Duration
		atResume    []time.Time // submitted at resume (10:03:30)
	}{
		{CatchUpNone, time.Hour, nil},
		{CatchUpLast, time.Hour, minutes(3)},
		{CatchUpAll, time.Hour, minutes(1, 2, 3)},
		{CatchUpAll, 150 * time.Second, minutes(2, 3)},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%s", tt.catchUp, tt.maxLateness), func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock(t0.Add(30 * time.Second))
			sub := newMemSubmitter()
			b := start(t, Config{Schedule: mustSchedule(t, "* * * * *", time.UTC), CatchUp: tt.catchUp, MaxLateness: tt.maxLateness}, clock, sub)
			clock.waitIdle(t, 1)
			before := len(sub.ticks())
			b.timer.SetPaused(true)
			if !b.timer.Paused() {
				t.Fatal("Paused = false after SetPaused(true)")
			}
			for m := 1; m <= 3; m++ {
				clock.set(t0.Add(time.Duration(m) * time.Minute))
				clock.waitIdle(t, 1)
			}
			if n := len(sub.ticks()); n != before || b.count(ResultSkipped) != 3 {
				t.Fatalf("while paused: %d new tasks, counts %s; want none, skipped=3", n-before, b.counts())
			}
			if next := b.timer.NextTick(); !next.Equal(t0.Add(4 * time.Minute)) {
				t.Errorf("NextTick while paused = %v, want 10:04", next)
			}
			clock.set(t0.Add(3*time.Minute + 30*time.Second))
			b.timer.SetPaused(false)
			eventually(t, "the resume's catch-up", func() bool { return len(sub.ticks()) == before+len(tt.atResume) })
			clock.set(t0.Add(4 * time.Minute))
			clock.waitIdle(t, 1)
			want := append(append(sub.ticks()[:before:before], tt.atResume...), t0.Add(4*time.Minute))
			if got := sub.ticks(); !sameTimes(got, want) {
				t.Errorf("tasks %v, want %v", got, want)
			}
			if b.count(ResultCaughtUp) != len(tt.atResume)+before || b.count(ResultFired) != 1 || b.count(ResultSkipped) != 3 {
				t.Errorf("counts %s; want caught_up=%d fired=1 skipped=3", b.counts(), len(tt.atResume)+before)
			}
		})
	}
}

// TestSubmitRetries: a failing submit is retried with backoff (a rate
// limit after its wait) and LastError says why; the tick is submitted
// once the store takes it.
func TestSubmitRetries(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0.Add(-30 * time.Second))
	sub := newMemSubmitter()
	sub.fail = func(call int) error {
		switch call {
		case 1:
			return errDown
		case 2:
			return &async.RateLimitError{Tenant: "acme", Function: "report", Wait: 300 * time.Millisecond}
		case 3:
			return async.ErrQuotaExceeded
		}
		return nil
	}
	b := start(t, Config{Schedule: mustSchedule(t, "* * * * *", time.UTC), CatchUp: CatchUpNone}, clock, sub)
	clock.waitIdle(t, 1)
	clock.set(t0) // call 1 fails: retry after 1s
	clock.waitIdle(t, 1)
	if b.timer.LastError() == "" {
		t.Error("LastError empty after a failed submit")
	}
	steps := []time.Duration{time.Second, time.Second + 300*time.Millisecond, 3300 * time.Millisecond}
	for _, at := range steps {
		if len(sub.ticks()) != 0 {
			t.Fatalf("submitted before the retry at %s", at)
		}
		clock.set(t0.Add(at - time.Millisecond))
		clock.waitIdle(t, 1)
		clock.set(t0.Add(at))
		clock.waitIdle(t, 1)
	}
	if got, calls := sub.ticks(), sub.callCount(); !sameTimes(got, minutes(0)) || calls != 4 {
		t.Fatalf("tasks %v after %d calls; want [10:00] after 4", got, calls)
	}
	if b.timer.LastError() != "" || b.count(ResultFired) != 1 || b.count(ResultFailed) != 0 {
		t.Errorf("LastError %q counts %s; want none, fired=1", b.timer.LastError(), b.counts())
	}
}

// TestFailingTickIsSuperseded: with catch_up last a tick whose submits
// keep failing gives way to the next tick, and counts as failed.
func TestFailingTickIsSuperseded(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0.Add(-30 * time.Second))
	sub := newMemSubmitter()
	sub.fail = func(call int) error {
		if call < 7 {
			return errDown
		}
		return nil
	}
	b := start(t, Config{Schedule: mustSchedule(t, "* * * * *", time.UTC), CatchUp: CatchUpNone}, clock, sub)
	clock.waitIdle(t, 1)
	for at := time.Duration(0); at <= time.Minute; at += time.Second {
		clock.set(t0.Add(at))
		clock.waitIdle(t, 1)
	}
	if got := sub.ticks(); !sameTimes(got, minutes(1)) {
		t.Fatalf("tasks %v, want [10:01]", got)
	}
	if b.count(ResultFailed) != 1 || b.count(ResultFired) != 1 {
		t.Errorf("counts %s; want failed=1 fired=1", b.counts())
	}
}

// TestTimerAcrossDST runs 30 2 * * * in Europe/Berlin across both jumps of
// 2026 on the fake clock, an hour at a time: one task a day, at the
// rule's instant.
func TestTimerAcrossDST(t *testing.T) {
	t.Parallel()
	loc := berlin(t)
	for _, day := range []time.Time{time.Date(2026, 3, 28, 12, 0, 0, 0, loc), time.Date(2026, 10, 24, 12, 0, 0, 0, loc)} {
		clock := newFakeClock(day)
		sub := newMemSubmitter()
		b := start(t, Config{Schedule: mustSchedule(t, "30 2 * * *", loc), CatchUp: CatchUpNone}, clock, sub)
		clock.waitIdle(t, 1)
		for at := day; at.Before(day.Add(72 * time.Hour)); at = at.Add(15 * time.Minute) {
			clock.set(at)
			clock.waitIdle(t, 1)
		}
		got := walls(sub.ticks(), loc)
		want := "03:00+02 02:30+02 02:30+02"
		if day.Month() == time.October {
			want = "02:30+02 02:30+01 02:30+01"
		}
		if got != want {
			t.Errorf("%s: ticks %s, want %s (counts %s)", day.Format(time.DateOnly), got, want, b.counts())
		}
		b.stop()
	}
}

// TestTwoTimersOneQueue: two timers of one trigger (two nodes) on one
// store submit every tick; the store keeps exactly one task per tick.
func TestTwoTimersOneQueue(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0.Add(-500 * time.Millisecond))
	q := openQueue(t, clock)
	sub := async.NewSubmitter(async.SubmitterConfig{Store: q, Now: clock.Now})
	m := NewMetrics(prometheus.NewRegistry())
	a := start(t, Config{Schedule: mustSchedule(t, "@every 1s", time.UTC), CatchUp: CatchUpNone, Metrics: m}, clock, sub)
	b := start(t, Config{Schedule: mustSchedule(t, "@every 1s", time.UTC), CatchUp: CatchUpNone, Metrics: m}, clock, sub)
	clock.waitIdle(t, 2)
	const n = 50
	for i := range n {
		clock.set(t0.Add(time.Duration(i) * time.Second))
		clock.waitIdle(t, 2)
	}
	a.stop()
	b.stop()
	byTick := tasksByTick(t, q)
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Second)
		if got := byTick[at.Unix()]; got != 1 {
			t.Errorf("tick %s has %d tasks, want 1", at.Format(time.TimeOnly), got)
		}
	}
	if len(byTick) != n {
		t.Errorf("%d ticks have tasks, want %d", len(byTick), n)
	}
	if f, d := a.count(ResultFired), a.count(ResultDuplicate); f != n || d != n {
		t.Errorf("fired %d duplicate %d over both timers; want %d each", f, d, n)
	}
}

// openQueue opens an embedded queue on the fake clock.
func openQueue(t *testing.T, clock *fakeClock) *embedded.Queue {
	t.Helper()
	q, err := embedded.Open(t.TempDir(), embedded.Options{Now: clock.Now, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// tasksByTick counts the queue's tasks of tenant acme by event time
// (unix seconds).
func tasksByTick(t *testing.T, q async.Queue) map[int64]int {
	t.Helper()
	out := map[int64]int{}
	cursor := ""
	for {
		tasks, next, err := q.List(context.Background(), async.ListOptions{Tenant: "acme", Limit: 1000, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, task := range tasks {
			out[task.EventTime.Unix()]++
			if task.IdempotencyKey != IdempotencyKey("tick", task.EventTime) || task.ID != TaskID("acme", "tick", task.EventTime) {
				t.Errorf("task %s key %q: not the tick's id and key", task.ID, task.IdempotencyKey)
			}
		}
		if next == "" {
			return out
		}
		cursor = next
	}
}

// TestStall: a timer that comes to its ticks late while it runs (a slow
// store, a busy machine) runs those at most 10s late whatever catch_up
// says; earlier ones were missed, and catch_up last passes them over.
func TestStall(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(t0.Add(-500 * time.Millisecond))
	sub := newMemSubmitter()
	b := start(t, Config{Schedule: mustSchedule(t, "@every 1s", time.UTC), CatchUp: CatchUpLast}, clock, sub)
	clock.waitIdle(t, 1)
	before := len(sub.ticks())
	clock.set(t0.Add(4 * time.Second)) // 5 ticks at once: all within the grace
	clock.waitIdle(t, 1)
	if got := sub.ticks()[before:]; !sameTimes(got, []time.Time{t0, t0.Add(time.Second), t0.Add(2 * time.Second), t0.Add(3 * time.Second), t0.Add(4 * time.Second)}) {
		t.Fatalf("after a 4.5s stall: %v, want the 5 ticks", got)
	}
	clock.set(t0.Add(34 * time.Second)) // 30 ticks: the 19 older than 10s are missed
	clock.waitIdle(t, 1)
	got := sub.ticks()[before+5:]
	if len(got) != 11 || !got[0].Equal(t0.Add(24*time.Second)) || !got[10].Equal(t0.Add(34*time.Second)) {
		t.Fatalf("after a 30s stall: %v, want 10:00:24 to 10:00:34", got)
	}
	if b.count(ResultSkipped) != 19 || b.count(ResultFired) != 16 {
		t.Errorf("counts %s; want skipped=19 fired=16", b.counts())
	}
}
