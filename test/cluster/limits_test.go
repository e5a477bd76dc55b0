package cluster

import (
	"fmt"
	"sort"
	"testing"
	"time"
)

// perNode counts calls per node, e.g. "n1:102 n2:99 n3:99".
func perNode(calls []call) string {
	count := map[string]int{}
	for _, c := range calls {
		count[c.Node]++
	}
	names := make([]string, 0, len(count))
	for n := range count {
		names = append(names, n)
	}
	sort.Strings(names)
	s := ""
	for _, n := range names {
		s += fmt.Sprintf("%s:%d ", n, count[n])
	}
	return s
}

// TestClusterLimits: the limits hold for the cluster, not per node.
// MaxConcurrency: a function with max_concurrency 8 served by 3 nodes of
// 16 workers each (each alone would run 16) never has more than 8 calls
// in flight at the backend. Rate: a tenant with rate 50 (burst 2) served
// by 3 nodes starts at most 55 calls in any 1 s window, about 50 a second
// overall. Burst 2 rather than 1: with burst 1 a token not taken the
// moment it comes is gone, and the cluster delivers about 42/s (measured).
// Not parallel: the rate is measured at the backend, and other tests
// competing for the CPU would delay starts and bunch them.
func TestClusterLimits(t *testing.T) {
	c := newCluster(t, spec{Nodes: 3, Body: `
dispatcher: { workers: 16 }
tenants:
  - { name: acme, api_keys: [acme-key], max_concurrency: 100 }
  - { name: paced, api_keys: [paced-key], max_concurrency: 100, rate: 50, burst: 2 }
functions:
  - name: capped
    tenant: acme
    backend: { http: { url: "{{backend}}/capped", timeout: 5s } }
    max_concurrency: 8
  - name: metered
    tenant: paced
    backend: { http: { url: "{{backend}}/metered", timeout: 5s } }
    max_concurrency: 50
`})

	t.Run("MaxConcurrency", func(t *testing.T) {
		const n = 300
		c.Backend.SetLatency("acme/capped", 30*time.Millisecond, 60*time.Millisecond)
		l := newLedger()
		s := &submitter{c: c, Key: "acme-key", Fn: "capped", Retry: 30 * time.Second}
		s.Many(l, 0, n, 24)
		views := c.waitFinal(t, c.Nodes, "acme-key", l.IDs(nil), 2*time.Minute)
		calls := c.Backend.Calls(func(cl *call) bool { return cl.Function == "acme/capped" })
		got := tally(t, l, views, calls)
		peak := c.Backend.Peak("acme/capped")
		t.Logf("%s (answers %s)", got, l.Statuses())
		t.Logf("max_concurrency 8 over 3 nodes × 16 workers: peak %d in flight at the backend; calls per node %s", peak, perNode(calls))
		if got.N != n || got.lost != 0 || got.unexpected != 0 || got.duplicated != 0 {
			t.Errorf("%s: want N=%d lost=0 unexpected=0 duplicated=0", got, n)
		}
		if peak > 8 {
			t.Errorf("peak %d calls in flight, want at most 8 (max_concurrency, cluster-wide)", peak)
		}
		if peak < 6 {
			t.Errorf("peak %d calls in flight: the limit was never approached, the test proves nothing", peak)
		}
	})

	t.Run("Rate", func(t *testing.T) {
		const n = 250
		c.Backend.SetLatency("paced/metered", 5*time.Millisecond, 15*time.Millisecond)
		l := newLedger()
		// Submissions over the rate are refused with 429 (admission):
		// the submitter tries again, so the queue keeps filling.
		s := &submitter{c: c, Key: "paced-key", Fn: "metered", Retry: time.Minute}
		began := time.Now()
		s.Many(l, 0, n, 12)
		t.Logf("%d tasks submitted in %.1fs", n, time.Since(began).Seconds())
		views := c.waitFinal(t, c.Nodes, "paced-key", l.IDs(nil), 2*time.Minute)
		calls := c.Backend.Calls(func(cl *call) bool { return cl.Function == "paced/metered" })
		got := tally(t, l, views, calls)
		starts := make([]time.Time, len(calls))
		for i, cl := range calls {
			starts[i] = cl.Start
		}
		sort.Slice(starts, func(i, j int) bool { return starts[i].Before(starts[j]) })
		window := maxInWindow(starts, time.Second)
		var overall float64
		if len(starts) > 1 {
			overall = float64(len(starts)-1) / starts[len(starts)-1].Sub(starts[0]).Seconds()
		}
		t.Logf("%s (answers %s)", got, l.Statuses())
		t.Logf("tenant rate 50/s over 3 nodes: at most %d starts in any 1s window (%d in 100ms), %.1f/s overall; calls per node %s",
			window, maxInWindow(starts, 100*time.Millisecond), overall, perNode(calls))
		if got.N != n || got.lost != 0 || got.unexpected != 0 || got.duplicated != 0 {
			t.Errorf("%s: want N=%d lost=0 unexpected=0 duplicated=0", got, n)
		}
		if window > 55 {
			t.Errorf("%d calls started within 1s, want at most 55 (rate 50/s, cluster-wide)", window)
		}
		if overall < 40 || overall > 55 {
			t.Errorf("%.1f calls/s overall, want about 50 (40..55)", overall)
		}
	})
}

// TestClusterFairness: tenant big has 10,000 tasks queued (submitted
// through node 1, while its calls are held so they stay queued), then
// tenant small submits 10 through node 2. Once big's calls are let go,
// small's 10 finish while big still has most of its tasks unfinished:
// one tenant's backlog does not delay another's, whichever node they
// came through.
func TestClusterFairness(t *testing.T) {
	t.Parallel()
	const (
		nBig   = 10000
		nSmall = 10
	)
	c := newCluster(t, spec{Nodes: 3, Body: `
dispatcher: { workers: 16 }
tenants:
  - { name: big, api_keys: [big-key], max_concurrency: 100, max_queued: 20000 }
  - { name: small, api_keys: [small-key], max_concurrency: 100 }
functions:
  - name: work
    tenant: big
    backend: { http: { url: "{{backend}}/work", timeout: 30s } }
    max_concurrency: 100
  - name: work
    tenant: small
    backend: { http: { url: "{{backend}}/work", timeout: 30s } }
    max_concurrency: 10
`})
	c.Backend.SetLatency("big/work", 100*time.Millisecond, 150*time.Millisecond)
	c.Backend.SetLatency("small/work", 10*time.Millisecond, 20*time.Millisecond)
	release := c.Backend.Hold("big/work")
	defer release()

	began := time.Now()
	big := newLedger()
	(&submitter{c: c, Key: "big-key", Fn: "work", Nodes: c.Nodes[:1], Retry: 30 * time.Second}).Many(big, 0, nBig, 32)
	if big.Accepted() != nBig {
		t.Fatalf("big: accepted %d of %d: %s", big.Accepted(), nBig, big.Statuses())
	}
	t.Logf("big: %d tasks submitted through n1 in %.1fs", nBig, time.Since(began).Seconds())
	small := newLedger()
	(&submitter{c: c, Key: "small-key", Fn: "work", Nodes: c.Nodes[1:2], Retry: 30 * time.Second}).Many(small, 0, nSmall, nSmall)

	released := time.Now()
	release()
	views := c.waitFinal(t, c.Nodes[1:], "small-key", small.IDs(nil), time.Minute)
	took := time.Since(released)
	bigDone := c.Backend.Completed("big/work")
	calls := c.Backend.Calls(func(cl *call) bool { return cl.Function == "small/work" })
	got := tally(t, small, views, calls)
	t.Logf("small: %s, all finished %.2fs after big's calls were let go; big then had %d of %d unfinished",
		got, took.Seconds(), nBig-bigDone, nBig)
	if got.N != nSmall || got.lost != 0 || got.unexpected != 0 || got.duplicated != 0 {
		t.Errorf("%s: want N=%d lost=0 unexpected=0 duplicated=0", got, nSmall)
	}
	if nBig-bigDone < nBig/2 {
		t.Errorf("big had only %d of %d unfinished when small's %d finished: small waited behind big's backlog", nBig-bigDone, nBig, nSmall)
	}
}
