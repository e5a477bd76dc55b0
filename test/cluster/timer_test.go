package cluster

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/timer"
)

// timerBody is a function and an @every 1s timer trigger on it.
const timerBody = `
tenants:
  - { name: acme, api_keys: [acme-key] }
functions:
  - name: tick
    tenant: acme
    backend: { http: { url: "{{backend}}/tick", timeout: 5s } }
    max_concurrency: 4
triggers:
  - name: every-second
    function: tick
    source: { timer: { cron: "@every 1s", payload: { from: timer } } }
    catch_up: last
    max_lateness: 1h
`

// tickCall is one backend call of a timer task.
type tickCall struct {
	Tick time.Time // ce-time
	ID   string    // ce-id
}

// tickCalls returns the backend's calls of the timer's function, with
// their tick; it fails the test on a call whose ce-time is not a whole
// second or whose ce-id is not the tick's task id.
func tickCalls(t *testing.T, b *backend) []tickCall {
	t.Helper()
	var out []tickCall
	for _, c := range b.Calls(func(c *call) bool { return c.Function == "acme/tick" }) {
		at, err := time.Parse(time.RFC3339Nano, c.Time)
		if err != nil || at.Nanosecond() != 0 {
			t.Fatalf("call %s: ce-time %q is not a whole second (%v)", c.ID, c.Time, err)
		}
		if want := timer.TaskID("acme", "every-second", at); c.ID != want {
			t.Fatalf("call of tick %s has ce-id %s, want the tick's task id %s", c.Time, c.ID, want)
		}
		out = append(out, tickCall{Tick: at, ID: c.ID})
	}
	return out
}

// tickSummary counts the calls per tick and lists the ticks in order.
func tickSummary(calls []tickCall) (ticks []time.Time, perTick map[int64]int) {
	perTick = map[int64]int{}
	for _, c := range calls {
		if perTick[c.Tick.Unix()] == 0 {
			ticks = append(ticks, c.Tick)
		}
		perTick[c.Tick.Unix()]++
	}
	sort.Slice(ticks, func(i, j int) bool { return ticks[i].Before(ticks[j]) })
	return ticks, perTick
}

// window is a stretch of time in which the node was down.
type window struct{ from, to time.Time }

// TestTimerRestart runs an @every 1s timer on one node for about 30 s,
// stopping it twice (SIGTERM, then kill -9) for a few seconds: every tick
// while it runs has one task, called once (kill -9 may repeat the one
// call in flight), and the ticks missed while down collapse into one
// (catch_up: last), the latest before the restart.
func TestTimerRestart(t *testing.T) {
	t.Parallel()
	c := newCluster(t, spec{Nodes: 1, Embedded: true, Body: timerBody})
	node := c.Nodes[0]
	began := time.Now()
	var down []window
	stop := func(kill bool) {
		time.Sleep(8 * time.Second)
		w := window{from: time.Now()}
		if kill {
			node.Kill9()
		} else {
			node.Term()
		}
		time.Sleep(4 * time.Second)
		node.Restart()
		w.to = time.Now()
		down = append(down, w)
		// The restarted node caught up exactly one missed tick.
		if !waitFor(5*time.Second, func() bool {
			return node.Metric("ferry_timer_ticks_total", `trigger="every-second"`, `result="caught_up"`) == 1
		}) {
			t.Errorf("after restart %d: ferry_timer_ticks_total{result=caught_up} = %v, want 1",
				len(down), node.Metric("ferry_timer_ticks_total", `trigger="every-second"`, `result="caught_up"`))
		}
	}
	stop(false)
	stop(true)
	time.Sleep(8 * time.Second)
	end := time.Now()
	// Every tick up to the end has been called (the dispatcher runs
	// them within a second).
	if !waitFor(10*time.Second, func() bool {
		ticks, _ := tickSummary(tickCalls(t, c.Backend))
		return len(ticks) > 0 && !ticks[len(ticks)-1].Before(end.Truncate(time.Second))
	}) {
		t.Fatalf("the tick of %s was not called", end.Truncate(time.Second).Format(time.TimeOnly))
	}
	node.Term()

	ticks, perTick := tickSummary(tickCalls(t, c.Backend))
	dups := 0
	for _, at := range ticks {
		dups += perTick[at.Unix()] - 1
	}
	// kill -9 repeats at most the calls in flight (one or two ticks).
	if dups > 2 {
		t.Errorf("%d repeated calls; want at most 2 (those in flight at kill -9): %v", dups, perTick)
	}
	checkGaps(t, ticks, began, end, down)
	t.Logf("ticks=%d repeated_calls=%d downtimes=%d", len(ticks), dups, len(down))
}

// checkGaps checks that ticks (sorted, seconds) run from the start to the
// end with no tick missing, except inside each down window, where the
// missed ticks collapse into one: the gap before it starts in the
// window, and it lies at most a second before the window's end.
func checkGaps(t *testing.T, ticks []time.Time, began, end time.Time, down []window) {
	t.Helper()
	if len(ticks) == 0 {
		t.Fatal("no tick was called")
	}
	if first := ticks[0]; first.After(began.Add(3 * time.Second)) {
		t.Errorf("the first tick is %s, more than 3s after the node started (%s)", first.Format(time.TimeOnly), began.Format(time.TimeOnly))
	}
	var gaps []string
	used := make([]bool, len(down))
	for i := 1; i < len(ticks); i++ {
		a, b := ticks[i-1], ticks[i]
		if b.Sub(a) == time.Second {
			continue
		}
		ok := false
		for j, w := range down {
			// The tick before the gap came before the node went down;
			// the one after it is the caught-up tick: before the window
			// ended, after it began.
			if !used[j] && !a.After(w.from.Add(time.Second)) && b.After(w.from) && !b.After(w.to) {
				used[j], ok = true, true
				break
			}
		}
		if !ok {
			gaps = append(gaps, fmt.Sprintf("%s..%s", a.Format(time.TimeOnly), b.Format(time.TimeOnly)))
		}
	}
	if len(gaps) > 0 {
		t.Errorf("ticks missing outside the downtimes (or a downtime caught up more than one): %s", strings.Join(gaps, ", "))
	}
	for j, u := range used {
		if !u {
			t.Errorf("downtime %d (%s..%s) left no gap: the ticks missed while down were not collapsed", j,
				down[j].from.Format(time.TimeOnly), down[j].to.Format(time.TimeOnly))
		}
	}
	if last := ticks[len(ticks)-1]; last.Before(end.Add(-2 * time.Second)) {
		t.Errorf("the last tick is %s, the test ran until %s", last.Format(time.TimeOnly), end.Format(time.TimeOnly))
	}
}

// TestTimerTwoNodes runs the same @every 1s timer on two nodes sharing
// one Redis store for about 15 s: both submit every tick, and each tick
// has exactly one task, called once.
func TestTimerTwoNodes(t *testing.T) {
	t.Parallel()
	c := newCluster(t, spec{Nodes: 2, Body: timerBody})
	began := time.Now() // both nodes are up
	time.Sleep(15 * time.Second)
	end := time.Now()
	if !waitFor(10*time.Second, func() bool {
		ticks, _ := tickSummary(tickCalls(t, c.Backend))
		return len(ticks) > 0 && !ticks[len(ticks)-1].Before(end.Truncate(time.Second))
	}) {
		t.Fatalf("the tick of %s was not called", end.Truncate(time.Second).Format(time.TimeOnly))
	}
	// Every node submitted the ticks: one created each task, the other
	// found it (a duplicate).
	var created, dup float64
	for _, n := range c.Nodes {
		created += n.Metric("ferry_timer_ticks_total", `trigger="every-second"`, `result="fired"`) +
			n.Metric("ferry_timer_ticks_total", `trigger="every-second"`, `result="caught_up"`)
		dup += n.Metric("ferry_timer_ticks_total", `trigger="every-second"`, `result="duplicate"`)
	}
	for _, n := range c.Nodes {
		n.Term()
	}
	ticks, perTick := tickSummary(tickCalls(t, c.Backend))
	for _, at := range ticks {
		if n := perTick[at.Unix()]; n != 1 {
			t.Errorf("tick %s was called %d times, want once", at.Format(time.TimeOnly), n)
		}
	}
	// Both nodes ran from began on: no tick missing from then.
	var inWindow []time.Time
	for _, at := range ticks {
		if at.After(began) {
			inWindow = append(inWindow, at)
		}
	}
	checkGaps(t, inWindow, began, end, nil)
	// The counts were read a moment before the nodes stopped.
	if d := created - float64(len(ticks)); d < -3 || d > 3 {
		t.Errorf("the nodes created %v tasks (fired + caught_up), the backend saw %d ticks", created, len(ticks))
	}
	if dup < float64(len(inWindow)-2) {
		t.Errorf("the nodes found %v duplicates, want about one per tick (%d): both nodes submit every tick", dup, len(inWindow))
	}
	t.Logf("ticks=%d created=%v duplicate=%v", len(ticks), created, dup)
}
