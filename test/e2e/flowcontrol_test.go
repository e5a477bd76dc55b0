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

// floodResult is what flood did.
type floodResult struct {
	ids      []string // accepted tasks, in no particular order
	limited  int      // 429 rate_limited answers
	problems []string // what went wrong, for the test goroutine to report
}

// floodRetryWait is how long flood waits before submitting again after a
// 429: shorter than the Retry-After (whole seconds) so that a test keeps
// the API saturated without lasting long.
const floodRetryWait = 20 * time.Millisecond

// flood submits n tasks of fn with f's key from workers goroutines as fast as the API takes them. A 429 must be rate_limited
// with a positive whole Retry-After; the task is submitted again after
// floodRetryWait. hdr, when set, adds headers to each request (it is
// called again for every retry). It returns once every task is accepted
// or has given up; it never calls t.Fatal, so it may run on any goroutine.
func flood(f *ferryProc, fn string, n, workers int, hdr func(i int) map[string]string) floodResult {
	var (
		mu  sync.Mutex
		res floodResult
		wg  sync.WaitGroup
	)
	problem := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(res.problems) < 20 {
			res.problems = append(res.problems, fmt.Sprintf(format, args...))
		}
	}
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				for tries := 0; ; tries++ {
					if tries == 2000 {
						problem("task %d: still refused after %d submissions", i, tries)
						break
					}
					h := map[string]string{"Content-Type": "application/json"}
					if hdr != nil {
						for k, v := range hdr(i) {
							h[k] = v
						}
					}
					r, err := f.do(http.MethodPost, "/v1/functions/"+fn+"/tasks", []byte(fmt.Sprintf(`{"i": %d}`, i)), h)
					if err != nil {
						problem("task %d: %v", i, err)
						break
					}
					if r.status == http.StatusAccepted {
						var id string
						if m := taskIDRE.FindSubmatch(r.body); m != nil {
							id = string(m[1])
						}
						mu.Lock()
						res.ids = append(res.ids, id)
						mu.Unlock()
						break
					}
					if r.status != http.StatusTooManyRequests {
						problem("task %d: status %d, want 202 or 429: %s", i, r.status, r.body)
						break
					}
					if e, err := errBody(r); err != nil || e.Code != "rate_limited" {
						problem("429 with error %+v (%v), want code rate_limited", e, err)
					}
					if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s <= 0 {
						problem("429 with Retry-After %q, want a positive number of seconds", r.header.Get("Retry-After"))
					}
					mu.Lock()
					res.limited++
					mu.Unlock()
					time.Sleep(floodRetryWait) // the client's back-off, not synchronisation
				}
			}
		}()
	}
	wg.Wait()
	return res
}

// taskIDRE finds the id in a submission's answer.
var taskIDRE = regexp.MustCompile(`"id":\s*"([^"]+)"`)

// report fails the test with a flood's problems and checks that it
// submitted n tasks.
func (r floodResult) report(t *testing.T, what string, n int) {
	t.Helper()
	for _, p := range r.problems {
		t.Errorf("%s: %s", what, p)
	}
	if len(r.ids) != n {
		t.Fatalf("%s: %d tasks accepted, want %d", what, len(r.ids), n)
	}
}

// waitSucceeded polls the task list until the function has n succeeded
// tasks, failing early if any of its tasks failed.
func waitSucceeded(t *testing.T, f *ferryProc, fn string, n int, timeout time.Duration) {
	t.Helper()
	ferrytest.WaitFor(t, timeout, fmt.Sprintf("%d tasks of %s to succeed", n, fn), func() bool {
		if failed := listTasks(t, f, "function="+fn+"&status=failed", 1000); len(failed) > 0 {
			t.Fatalf("task of %s failed: %+v (error %+v)", fn, failed[0], failed[0].Error)
		}
		return len(listIDs(t, f, "function="+fn+"&status=succeeded", 1000)) == n
	})
}

// startsOf returns the sorted start times of the calls of tenant's
// function fn.
func startsOf(calls []call, tenant, fn string) []time.Time {
	var out []time.Time
	for _, c := range calls {
		if c.Header.Get("ce-source") == "/ferry/async/"+tenant+"/"+fn {
			out = append(out, c.Start)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// maxInWindow returns the most of the sorted times within any window of
// length w, and overall rate (n-1)/(last-first) per second.
func maxInWindow(times []time.Time, w time.Duration) (most int, rate float64) {
	j := 0
	for i := range times {
		for times[i].Sub(times[j]) >= w {
			j++
		}
		most = max(most, i-j+1)
	}
	if n := len(times); n > 1 {
		rate = float64(n-1) / times[n-1].Sub(times[0]).Seconds()
	}
	return most, rate
}

// rateWindow is the sliding window in which the tests allow at most
// rate+burst invocations (what a token bucket allows in a second): a
// second, less an allowance of 100 ms for the jitter between Ferry starting
// a call and the backend seeing it (a call seen late shortens the gap to
// the next one; 40 ms was exceeded on a loaded 2-core machine).
const rateWindow = time.Second - 100*time.Millisecond

// percentile returns the p-th percentile (0 < p <= 1) of ds by the
// nearest-rank method.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(k, len(s)-1))]
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	be := newBackend(t, nil)
	f := startFerry(t, fmt.Sprintf(`
server: { listen: "{{listen}}" }
store: { embedded: { path: "{{data}}" } }
tenants:
  - { name: noisy, api_keys: [noisy-key], rate: 50 }
  - { name: quiet, api_keys: [quiet-key] }
  - { name: paced, api_keys: [paced-key], rate: 20 }
functions:
  - { name: bulk, tenant: noisy, backend: { http: { url: %[1]q } } }
  - { name: ping, tenant: quiet, backend: { http: { url: %[1]q } } }
  - { name: batch, tenant: paced, backend: { http: { url: %[1]q } } }
`, be.URL()))
	const (
		noisyN, noisyRate, noisyBurst = 500, 50, 5 // burst: a tenth of the rate by default
		pacedN, pacedRate, pacedBurst = 30, 20, 2
		quietN                        = 20
	)
	start := time.Now()

	// noisy floods the API; paced submits tasks that all become ready at
	// once, so that only the dispatcher can pace their invocations.
	noisyDone, pacedDone := make(chan floodResult, 1), make(chan floodResult, 1)
	go func() { noisyDone <- flood(f.as("noisy-key"), "bulk", noisyN, 16, nil) }()
	readyAt := start.Add(4 * time.Second)
	var late atomic.Int32
	go func() {
		pacedDone <- flood(f.as("paced-key"), "batch", pacedN, 4, func(int) map[string]string {
			d := time.Until(readyAt)
			if d <= 0 {
				late.Add(1)
				d = 0
			}
			return map[string]string{"Ferry-Delay": d.Round(time.Millisecond).String()}
		})
	}()

	// Meanwhile quiet submits at its own pace and must not wait on noisy.
	ferrytest.WaitFor(t, 10*time.Second, "noisy's tasks to run", func() bool {
		return len(startsOf(be.all(), "noisy", "bulk")) >= 2*noisyRate
	})
	quiet := f.as("quiet-key")
	submitted := map[string]time.Time{}
	tick := time.NewTicker(50 * time.Millisecond)
	for range quietN {
		<-tick.C
		at := time.Now()
		submitted[quiet.submitOK(t, "ping", `{"quiet": true}`, nil)] = at
	}
	tick.Stop()
	waitSucceeded(t, quiet, "ping", quietN, 10*time.Second)
	var latency []time.Duration
	for id, at := range submitted {
		calls := be.callsFor(id)
		if len(calls) != 1 {
			t.Fatalf("quiet task %s: %d calls, want 1", id, len(calls))
		}
		latency = append(latency, calls[0].Start.Sub(at))
	}
	p50, p99 := percentile(latency, 0.5), percentile(latency, 0.99)
	t.Logf("quiet: submit to backend latency p50 %s, p99 %s (noisy flooding meanwhile)", p50.Round(time.Microsecond), p99.Round(time.Microsecond))
	if p99 >= time.Second {
		t.Errorf("quiet's p99 submit-to-invocation latency %s, want < 1s: the noisy tenant delays it", p99)
	}

	noisy := <-noisyDone
	noisy.report(t, "noisy", noisyN)
	if noisy.limited == 0 {
		t.Errorf("noisy was never answered 429 while submitting %d tasks at once over its rate %d/s", noisyN, noisyRate)
	}
	waitSucceeded(t, f.as("noisy-key"), "bulk", noisyN, 20*time.Second)
	starts := startsOf(be.all(), "noisy", "bulk")
	most, rate := maxInWindow(starts, rateWindow)
	most1s, _ := maxInWindow(starts, time.Second)
	t.Logf("noisy: %d tasks accepted after %d 429s; %d invocations over %s: %.1f/s overall, at most %d in any %s window (%d in any 1s)",
		len(noisy.ids), noisy.limited, len(starts), starts[len(starts)-1].Sub(starts[0]).Round(time.Millisecond), rate, most, rateWindow, most1s)
	if len(starts) != noisyN {
		t.Errorf("noisy's function ran %d times, want %d", len(starts), noisyN)
	}
	if most > noisyRate+noisyBurst {
		t.Errorf("noisy ran %d invocations within %s, want at most rate+burst = %d", most, rateWindow, noisyRate+noisyBurst)
	}
	if rate > noisyRate*1.1 {
		t.Errorf("noisy ran at %.1f invocations/s overall, want <= %d/s", rate, noisyRate)
	}

	paced := <-pacedDone
	paced.report(t, "paced", pacedN)
	if n := late.Load(); n > 0 {
		t.Logf("paced: %d submissions came after the common ready time", n)
	}
	waitSucceeded(t, f.as("paced-key"), "batch", pacedN, 20*time.Second)
	pstarts := startsOf(be.all(), "paced", "batch")
	pmost, prate := maxInWindow(pstarts, rateWindow)
	span := pstarts[len(pstarts)-1].Sub(pstarts[0])
	t.Logf("paced: %d tasks ready at once ran over %s: %.1f/s overall, at most %d in any %s window", len(pstarts), span.Round(time.Millisecond), prate, pmost, rateWindow)
	if pmost > pacedRate+pacedBurst {
		t.Errorf("paced ran %d invocations within %s, want at most rate+burst = %d", pmost, rateWindow, pacedRate+pacedBurst)
	}
	if minSpan := time.Duration(pacedN-pacedBurst-1) * time.Second / pacedRate; span < minSpan*9/10 {
		t.Errorf("paced's %d ready tasks ran within %s, want them spread over about %s by the rate", pacedN, span, minSpan)
	}
	t.Logf("TestRateLimit took %s", time.Since(start).Round(time.Millisecond))
}
