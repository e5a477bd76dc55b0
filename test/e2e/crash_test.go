package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

// counts are the reliability.md figures of one scenario.
type counts struct {
	N, lost, duplicated, unexpected int
	recovery                        time.Duration
}

func (c counts) String() string {
	return fmt.Sprintf("N=%d lost=%d duplicated=%d unexpected=%d recovery_s=%.2f",
		c.N, c.lost, c.duplicated, c.unexpected, c.recovery.Seconds())
}

// submitMany submits n tasks to fn from `parallel` goroutines; hdr(i)
// gives the headers of task i. It returns the ids answered 202 and the
// errors of the others (it never calls t.Fatal off the test goroutine).
func submitMany(f *ferryProc, fn string, n, parallel int, hdr func(i int) map[string]string) ([]string, []error) {
	var (
		mu   sync.Mutex
		ids  []string
		errs []error
		wg   sync.WaitGroup
	)
	next := make(chan int)
	for range parallel {
		wg.Go(func() {
			for i := range next {
				h := map[string]string{"Content-Type": "application/json"}
				for k, v := range hdr(i) {
					h[k] = v
				}
				r, err := f.do(http.MethodPost, "/v1/functions/"+fn+"/tasks", fmt.Appendf(nil, `{"seq": %d}`, i), h)
				var id string
				if err == nil && r.status == http.StatusAccepted {
					var v struct {
						ID string `json:"id"`
					}
					if err = json.Unmarshal(r.body, &v); err == nil && v.ID == "" {
						err = fmt.Errorf("task %d: 202 without an id: %s", i, r.body)
					}
					id = v.ID
				} else if err == nil {
					err = fmt.Errorf("task %d: status %d: %s", i, r.status, r.body)
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					ids = append(ids, id)
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return ids, errs
}

// waitAllFinal polls every id until each is final and returns their views.
func waitAllFinal(t *testing.T, f *ferryProc, ids []string, timeout time.Duration) map[string]taskView {
	t.Helper()
	final := map[string]taskView{}
	pending := append([]string(nil), ids...)
	ferrytest.WaitFor(t, timeout, fmt.Sprintf("%d tasks to finish", len(ids)), func() bool {
		var still []string
		for _, id := range pending {
			r := f.mustDo(t, http.MethodGet, "/v1/tasks/"+id, nil, nil)
			if r.status != http.StatusOK {
				t.Fatalf("GET accepted task %s: status %d: %s", id, r.status, r.body)
			}
			v := r.task(t)
			switch v.Status {
			case "succeeded", "failed", "cancelled":
				final[id] = v
			default:
				still = append(still, id)
			}
		}
		pending = still
		return len(pending) == 0
	})
	return final
}

// tally counts per reliability.md: lost = accepted but not succeeded;
// duplicated = ids the backend handled more than once (completed calls, or
// every call when byStart); unexpected = ids the backend saw that were
// never accepted.
func tally(t *testing.T, accepted []string, final map[string]taskView, calls []call, byStart bool) counts {
	t.Helper()
	c := counts{N: len(accepted)}
	acc := map[string]bool{}
	for _, id := range accepted {
		acc[id] = true
		if v := final[id]; v.Status != "succeeded" {
			c.lost++
			t.Errorf("accepted task %s ended %s (attempts %d, error %+v), want succeeded", id, v.Status, v.Attempts, v.Error)
		} else if v.Attempts != 1 {
			t.Errorf("task %s succeeded with attempts %d, want 1 (a crash or shutdown must not spend an attempt)", id, v.Attempts)
		}
	}
	handled := map[string]int{}
	unexpected := map[string]bool{}
	for _, cl := range calls {
		if !acc[cl.ID] {
			unexpected[cl.ID] = true
		}
		if byStart || cl.Completed {
			handled[cl.ID]++
		}
	}
	for _, n := range handled {
		if n > 1 {
			c.duplicated++
		}
	}
	c.unexpected = len(unexpected)
	return c
}

func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	const (
		n        = 100
		delayed  = 20
		inFlight = 4
	)
	be := newBackend(t, func(c *call, _ int) reply {
		r := echo(c)
		r.Hold = 300 * time.Millisecond // the simulated work
		return r
	})
	f := startFerry(t, fmt.Sprintf(`
server: { listen: "{{listen}}" }
store: { embedded: { path: "{{data}}" } }
tenants:
  - { name: acme, api_keys: [acme-key] }
functions:
  - name: work
    tenant: acme
    backend: { http: { url: %q, timeout: 10s } }
    max_concurrency: %d
    retry: { max_attempts: 1 }
`, be.URL(), inFlight))
	f.key = "acme-key"

	accepted, errs := submitMany(f, "work", n, 10, func(i int) map[string]string {
		if i%(n/delayed) == 0 {
			return map[string]string{"Ferry-Delay": "2s"}
		}
		return nil
	})
	for _, err := range errs {
		t.Errorf("submit: %v", err)
	}
	ferrytest.WaitFor(t, 20*time.Second, "the backend to start 6 calls", func() bool { return be.count() >= 6 })
	f.Kill9()
	startedBefore := be.count()

	restarted := time.Now()
	f.Restart()
	final := waitAllFinal(t, f, accepted, 60*time.Second)
	recovery := time.Since(restarted)

	c := tally(t, accepted, final, be.all(), false)
	c.recovery = recovery
	t.Logf("kill -9 after %d backend calls: %s", startedBefore, c)
	if c.N != n {
		t.Errorf("N = %d accepted, want %d", c.N, n)
	}
	if c.lost != 0 || c.unexpected != 0 || c.duplicated > inFlight {
		t.Errorf("%s: want lost=0 unexpected=0 duplicated<=%d", c, inFlight)
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	const n = 200
	// The backend holds its calls until every task is submitted, so that
	// SIGTERM lands with calls in flight and tasks still queued.
	gate := make(chan struct{})
	be := newBackend(t, func(c *call, _ int) reply {
		select {
		case <-gate:
		case <-time.After(30 * time.Second):
		}
		r := echo(c)
		r.Hold = 20 * time.Millisecond
		return r
	})
	f := startFerry(t, fmt.Sprintf(`
server: { listen: "{{listen}}", shutdown_timeout: 10s }
store: { embedded: { path: "{{data}}" } }
tenants:
  - { name: acme, api_keys: [acme-key] }
functions:
  - name: work
    tenant: acme
    backend: { http: { url: %q, timeout: 10s } }
    max_concurrency: 8
    retry: { max_attempts: 1 }
`, be.URL()))
	f.key = "acme-key"

	accepted, errs := submitMany(f, "work", n, 16, func(int) map[string]string { return nil })
	close(gate)
	for _, err := range errs {
		t.Errorf("submit: %v", err)
	}
	ferrytest.WaitFor(t, 20*time.Second, "the backend to see 40 calls", func() bool { return be.count() >= 40 })
	f.Term()
	seenBefore := be.count()
	if seenBefore >= n {
		t.Fatalf("all %d tasks ran before SIGTERM took effect: the test proves nothing", n)
	}

	restarted := time.Now()
	f.Restart()
	final := waitAllFinal(t, f, accepted, 60*time.Second)
	c := tally(t, accepted, final, be.all(), true)
	c.recovery = time.Since(restarted)
	t.Logf("SIGTERM after %d backend calls: %s", seenBefore, c)
	if c.N != n {
		t.Errorf("N = %d accepted, want %d", c.N, n)
	}
	if c.lost != 0 || c.unexpected != 0 || c.duplicated != 0 {
		t.Errorf("%s: want lost=0 unexpected=0 duplicated=0 on a graceful shutdown", c)
	}
	for _, cl := range be.all() {
		if !cl.Completed {
			t.Errorf("call of %s (attempt %s) was cut short by the shutdown", cl.ID, cl.Attempt)
		}
	}
	f.Term()
}
