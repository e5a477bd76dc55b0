package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

// overloadable is a backend behaviour with a fixed capacity: every call
// takes hold, and a call that arrives while more than capacity calls are in
// flight (itself included) is answered 503. It samples the number in
// flight at each arrival.
type overloadable struct {
	capacity int
	hold     time.Duration

	inFlight       atomic.Int32
	ok, overloaded atomic.Int32

	mu      sync.Mutex
	samples []int
}

func (o *overloadable) behave(c *call, _ int) reply {
	n := int(o.inFlight.Add(1))
	o.mu.Lock()
	o.samples = append(o.samples, n)
	o.mu.Unlock()
	r := echo(c)
	if n > o.capacity {
		r = reply{Status: http.StatusServiceUnavailable, Body: []byte("overloaded")}
		o.overloaded.Add(1)
	} else {
		o.ok.Add(1)
	}
	r.Hold = o.hold
	r.Done = func() { o.inFlight.Add(-1) }
	return r
}

// medianSample returns the median number in flight at an arrival.
func (o *overloadable) medianSample() int {
	o.mu.Lock()
	s := append([]int(nil), o.samples...)
	o.mu.Unlock()
	if len(s) == 0 {
		return 0
	}
	sort.Ints(s)
	return s[len(s)/2]
}

// meanInFlight returns the time-weighted mean number of completed calls
// in flight from the first call's start to the last one's end.
func meanInFlight(calls []call) float64 {
	var first, last time.Time
	var busy time.Duration
	for _, c := range calls {
		if !c.Completed {
			continue
		}
		if first.IsZero() || c.Start.Before(first) {
			first = c.Start
		}
		if c.End.After(last) {
			last = c.End
		}
		busy += c.End.Sub(c.Start)
	}
	if !last.After(first) {
		return 0
	}
	return float64(busy) / float64(last.Sub(first))
}

// limitRE finds the adaptive concurrency limit of function crowd in /metrics.
var limitRE = regexp.MustCompile(`(?m)^ferry_function_concurrency_limit\{[^}]*function="crowd"[^}]*\} (\S+)$`)

func TestAdaptiveConcurrency(t *testing.T) {
	t.Parallel()
	const (
		tasks    = 300
		capacity = 4  // what the backend can take
		maxConc  = 32 // the function's max_concurrency
	)
	o := &overloadable{capacity: capacity, hold: 20 * time.Millisecond}
	be := newBackend(t, o.behave)
	f := startFerry(t, fmt.Sprintf(`
server: { listen: "{{listen}}" }
store: { embedded: { path: "{{data}}" } }
tenants:
  - { name: acme, api_keys: [acme-key], max_concurrency: 64 }
functions:
  - name: crowd
    tenant: acme
    max_concurrency: %d
    backend: { http: { url: %q, timeout: 5s } }
    retry: { max_attempts: 30, initial_interval: 10ms, max_interval: 200ms }
`, maxConc, be.URL()))
	f.key = "acme-key"

	// Every task becomes ready at once, so that Ferry could run 32 at a
	// time from the start.
	readyAt := time.Now().Add(2 * time.Second)
	var late atomic.Int32
	sub := flood(f, "crowd", tasks, 8, func(int) map[string]string {
		d := time.Until(readyAt)
		if d <= 0 {
			late.Add(1)
			d = 0
		}
		return map[string]string{"Ferry-Delay": d.Round(time.Millisecond).String()}
	})
	sub.report(t, "submit", tasks)
	if n := late.Load(); n > 0 {
		t.Logf("%d of %d submissions came after the common ready time", n, tasks)
	}

	// While they run, watch the limit Ferry exports, and stop early if
	// a task gives up (the figures below then say why).
	minLimit, lastScrape, failed := -1.0, time.Time{}, []taskView(nil)
	ferrytest.WaitFor(t, 60*time.Second, "every task to get a 200 from the backend", func() bool {
		if time.Since(lastScrape) >= 100*time.Millisecond {
			lastScrape = time.Now()
			if m := limitRE.FindSubmatch(f.mustDo(t, http.MethodGet, "/metrics", nil, nil).body); m != nil {
				if v, err := strconv.ParseFloat(string(m[1]), 64); err == nil && (minLimit < 0 || v < minLimit) {
					minLimit = v
				}
			}
			if failed = listTasks(t, f, "function=crowd&status=failed", 1); len(failed) > 0 {
				return true
			}
		}
		return int(o.ok.Load()) >= tasks
	})
	calls := be.all()
	ok, overloaded := int(o.ok.Load()), int(o.overloaded.Load())
	share := float64(overloaded) / float64(ok+overloaded)
	mean, median := meanInFlight(calls), o.medianSample()
	top := peak(calls, func(call) bool { return true })
	var span time.Duration
	for _, c := range calls {
		span = max(span, c.End.Sub(calls[0].Start))
	}
	t.Logf("%d tasks in %s: %d calls, %d answered 503 (%.1f%%); in flight: time-weighted mean %.2f, median at arrival %d, peak %d; lowest ferry_function_concurrency_limit seen %v",
		tasks, span.Round(time.Millisecond), len(calls), overloaded, 100*share, mean, median, top, minLimit)

	if mean > 6 || median > 6 {
		t.Errorf("backend driven at a mean of %.2f (median %d) calls in flight, want about its capacity %d (<= 6), not max_concurrency %d",
			mean, median, capacity, maxConc)
	}
	if mean < 1.5 {
		t.Errorf("backend driven at a mean of %.2f calls in flight, want close to its capacity %d: the limit does not grow back", mean, capacity)
	}
	if share >= 0.5 {
		t.Errorf("%.1f%% of the calls were answered 503, want well under half: Ferry keeps overloading the backend", 100*share)
	}
	if minLimit < 0 {
		t.Errorf("/metrics never showed ferry_function_concurrency_limit for function crowd")
	} else if minLimit >= maxConc {
		t.Errorf("ferry_function_concurrency_limit stayed at %v, want it lowered under max_concurrency %d", minLimit, maxConc)
	}
	// After the figures, which say why.
	if len(failed) > 0 {
		t.Fatalf("task %s gave up: %+v (error %+v)", failed[0].ID, failed[0], failed[0].Error)
	}
	waitSucceeded(t, f, "crowd", tasks, 30*time.Second)
	if ok != tasks {
		t.Errorf("backend answered 200 %d times, want once per task (%d)", ok, tasks)
	}
}
