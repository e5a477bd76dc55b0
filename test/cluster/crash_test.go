package cluster

import (
	"fmt"
	"testing"
	"time"
)

// A task whose node died runs elsewhere once its lease expires. On the
// Redis store (heartbeats, dispatcher.heartbeatLease) a lease lasts 15 s
// and the attempt renews it every 5 s; on a store without heartbeats it
// lasts the longest function timeout plus leaseGrace (dispatcher.leaseTTL).
// The scenarios print the time it took and allow for the longer one.
const (
	leaseGrace = 30 * time.Second
	leaseNote  = "lease 15s renewed every 5s by heartbeats; timeout + 30s without"
)

// workBody is the config of a cluster with one tenant, acme (key
// acme-key), and one function, work, whose attempts time out after
// timeout; each node runs at most workers tasks at once.
func workBody(workers int, timeout time.Duration, maxConcurrency int) string {
	return fmt.Sprintf(`
dispatcher: { workers: %d }
tenants:
  - { name: acme, api_keys: [acme-key], max_concurrency: 1000 }
functions:
  - name: work
    tenant: acme
    backend: { http: { url: "{{backend}}/work", timeout: %s } }
    max_concurrency: %d
    retry: { max_attempts: 3, initial_interval: 100ms, max_interval: 1s }
`, workers, timeout, maxConcurrency)
}

// orphans returns the tasks that victim was running at `at` (a call
// started before it and not answered before it) and the delays after
// which they ran on another node.
func orphans(calls []call, victim string, at time.Time) (ids map[string]bool, rerun []time.Duration) {
	ids = map[string]bool{}
	for _, c := range calls {
		if c.Node == victim && c.Start.Before(at) && (!c.Completed || !c.End.Before(at)) {
			ids[c.ID] = true
		}
	}
	first := map[string]time.Time{}
	for _, c := range calls {
		if ids[c.ID] && c.Node != victim && c.Start.After(at) {
			if f, ok := first[c.ID]; !ok || c.Start.Before(f) {
				first[c.ID] = c.Start
			}
		}
	}
	for _, f := range first {
		rerun = append(rerun, f.Sub(at))
	}
	return ids, rerun
}

// busy counts the calls of n in flight at the backend now.
func busy(c *cluster, n *node) int {
	return len(c.Backend.Calls(func(cl *call) bool { return cl.Node == n.Name && !cl.Completed }))
}

func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	lo, hi := ds[0], ds[0]
	for _, d := range ds {
		lo, hi = min(lo, d), max(hi, d)
	}
	return fmt.Sprintf("%.1fs..%.1fs", lo.Seconds(), hi.Seconds())
}

// duplicatedBy checks that every task the backend ran more than once was
// called by victim, the node the fault hit: a duplicate with no such cause
// is a bug. (A frozen node may also call, after its resume, a task it had
// leased but not yet sent.)
func duplicatedBy(t *testing.T, calls []call, victim string) {
	t.Helper()
	per := map[string][]call{}
	for _, c := range calls {
		per[c.ID] = append(per[c.ID], c)
	}
	for id, cs := range per {
		if len(cs) < 2 {
			continue
		}
		caused := false
		for _, c := range cs {
			caused = caused || c.Node == victim
		}
		if !caused {
			t.Errorf("task %s ran %d times although %s never ran it: %+v", id, len(cs), victim, cs)
		}
	}
}

// checkAttempts fails for a succeeded task that spent more than one
// attempt: the backend never fails, and a crash or lost lease must not
// spend an attempt.
func checkAttempts(t *testing.T, views map[string]taskView) {
	t.Helper()
	bad := 0
	for id, v := range views {
		if v.Status == "succeeded" && v.Attempts != 1 {
			if bad++; bad <= 5 {
				t.Errorf("task %s succeeded with attempts=%d (recoveries %d), want 1", id, v.Attempts, v.Recoveries)
			}
		}
	}
	if bad > 5 {
		t.Errorf("%d tasks in all succeeded with attempts != 1", bad)
	}
}

// TestNodeKill9: 3 nodes, 3,000 tasks submitted round-robin; node 2 is
// killed with kill -9 once a third has run. Nothing accepted is lost,
// nothing unexpected runs, and the duplicates are at most node 2's
// workers (the tasks it had in flight); node 2's tasks run elsewhere once
// their leases expire (see leaseNote).
func TestNodeKill9(t *testing.T) {
	t.Parallel()
	const (
		n       = 3000
		workers = 16
		timeout = 2 * time.Second
	)
	c := newCluster(t, spec{Nodes: 3, Body: workBody(workers, timeout, 3*workers)})
	c.Backend.SetLatency("acme/work", 20*time.Millisecond, 50*time.Millisecond)
	l := newLedger()
	s := &submitter{c: c, Key: "acme-key", Fn: "work", Retry: 30 * time.Second}
	submitted := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(submitted)
		s.Many(l, 0, n, 24)
	}()

	victim := c.Nodes[1]
	if !waitFor(2*time.Minute, func() bool { return c.Backend.Completed("acme/work") >= n/3 && busy(c, victim) >= 4 }) {
		t.Fatalf("the backend answered %d calls in 2 minutes, %d in flight on %s", c.Backend.Completed("acme/work"), busy(c, victim), victim.Name)
	}
	killed := time.Now()
	victim.Kill9()
	<-submitted
	views := c.waitFinal(t, c.Live(), "acme-key", l.IDs(nil), timeout+leaseGrace+2*time.Minute)
	took := time.Since(start)

	calls := c.Backend.Calls(nil)
	got := tally(t, l, views, calls)
	held, rerun := orphans(calls, victim.Name, killed)
	t.Logf("%s (answers %s; %.1fs in all)", got, l.Statuses(), took.Seconds())
	t.Logf("kill -9 of %s after %d answered calls: it had %d tasks in flight; they ran on another node %s after the kill (%s)",
		victim.Name, n/3, len(held), spread(rerun), leaseNote)
	if got.N != n || got.lost != 0 || got.unexpected != 0 || got.duplicated > workers {
		t.Errorf("%s: want N=%d lost=0 unexpected=0 duplicated<=%d (node 2's workers)", got, n, workers)
	}
	if len(rerun) != len(held) {
		t.Errorf("%d of the %d tasks in flight on %s ran again elsewhere", len(rerun), len(held), victim.Name)
	}
	duplicatedBy(t, calls, victim.Name)
	checkAttempts(t, views)
}

// TestNodeSIGTERM: 3 nodes under load; node 2 gets SIGTERM once a third
// has run. It finishes what it runs and exits 0: no duplicates, nothing
// lost, and the other nodes run the rest.
func TestNodeSIGTERM(t *testing.T) {
	t.Parallel()
	const (
		n       = 900
		workers = 16
	)
	c := newCluster(t, spec{Nodes: 3, Body: workBody(workers, 5*time.Second, 3*workers)})
	c.Backend.SetLatency("acme/work", 40*time.Millisecond, 80*time.Millisecond)
	l := newLedger()
	s := &submitter{c: c, Key: "acme-key", Fn: "work", Retry: 30 * time.Second}
	submitted := make(chan struct{})
	go func() {
		defer close(submitted)
		s.Many(l, 0, n, 16)
	}()

	victim := c.Nodes[1]
	if !waitFor(2*time.Minute, func() bool { return c.Backend.Completed("acme/work") >= n/3 && busy(c, victim) >= 4 }) {
		t.Fatalf("the backend answered %d calls in 2 minutes, %d in flight on %s", c.Backend.Completed("acme/work"), busy(c, victim), victim.Name)
	}
	inFlight := busy(c, victim)
	stopped := time.Now()
	victim.Term() // fails the test unless it exits 0 in time
	drain := time.Since(stopped)
	<-submitted
	views := c.waitFinal(t, c.Live(), "acme-key", l.IDs(nil), 2*time.Minute)

	calls := c.Backend.Calls(nil)
	got := tally(t, l, views, calls)
	t.Logf("%s (answers %s)", got, l.Statuses())
	t.Logf("SIGTERM of %s with %d calls in flight: exited in %.2fs", victim.Name, inFlight, drain.Seconds())
	if got.N != n || got.lost != 0 || got.unexpected != 0 || got.duplicated != 0 {
		t.Errorf("%s: want N=%d lost=0 unexpected=0 duplicated=0 on a graceful stop", got, n)
	}
	for _, cl := range calls {
		if cl.Node == victim.Name && !cl.Completed {
			t.Errorf("call of %s on %s was cut short by its SIGTERM", cl.ID, victim.Name)
		}
	}
	checkAttempts(t, views)
}

// TestNodeFrozen: node 2 is frozen with SIGSTOP while it runs tasks, past
// their leases; the other nodes run them again. Then it is resumed with
// SIGCONT: its late results are refused (fencing, counted as lease_lost in
// its metrics), so each of those tasks keeps the one completion another
// node recorded (attempts 1, finished before the resume, unchanged after).
func TestNodeFrozen(t *testing.T) {
	t.Parallel()
	const (
		n       = 300
		workers = 8
		timeout = time.Second
	)
	c := newCluster(t, spec{Nodes: 3, Body: workBody(workers, timeout, 3*workers)})
	c.Backend.SetLatency("acme/work", 150*time.Millisecond, 250*time.Millisecond)
	l := newLedger()
	s := &submitter{c: c, Key: "acme-key", Fn: "work", Retry: 30 * time.Second}
	s.Many(l, 0, n, 16)
	if l.Accepted() != n {
		t.Fatalf("accepted %d of %d: %s", l.Accepted(), n, l.Statuses())
	}

	victim := c.Nodes[1]
	if !waitFor(time.Minute, func() bool { return busy(c, victim) >= workers/2 }) {
		t.Fatalf("%s never had %d calls in flight", victim.Name, workers/2)
	}
	victim.Freeze()
	frozen := time.Now()
	views := c.waitFinal(t, c.Live(), "acme-key", l.IDs(nil), timeout+leaseGrace+2*time.Minute)

	// The tasks victim held when it froze: it called them, and they
	// finished (elsewhere) after the freeze.
	calls := c.Backend.Calls(nil)
	held := map[string]bool{}
	for _, cl := range calls {
		if v := views[cl.ID]; cl.Node == victim.Name && cl.Start.Before(frozen) && v.FinishedAt != nil && v.FinishedAt.After(frozen) {
			held[cl.ID] = true
		}
	}
	_, rerun := orphans(calls, victim.Name, frozen)

	thawed := time.Now()
	victim.Thaw()
	lost := func() float64 { return victim.Metric("ferry_task_outcomes_total", `outcome="lease_lost"`) }
	if !waitFor(30*time.Second, func() bool { return lost() >= float64(len(held)) }) {
		t.Errorf("after SIGCONT, %s refused %v results as lease_lost, want %d (the tasks it held)", victim.Name, lost(), len(held))
	}
	if !waitFor(10*time.Second, func() bool { return victim.Ready() == 200 }) {
		t.Errorf("%s not ready after SIGCONT", victim.Name)
	}
	ids := make([]string, 0, len(held))
	for id := range held {
		ids = append(ids, id)
	}
	after := c.waitFinal(t, c.Nodes, "acme-key", ids, 30*time.Second)
	for _, id := range ids {
		was, is := views[id], after[id]
		if is.Status != "succeeded" || is.Attempts != 1 || is.FinishedAt == nil || !is.FinishedAt.Equal(*was.FinishedAt) || is.FinishedAt.After(thawed) {
			t.Errorf("task %s held by the frozen node: after the resume %+v, before %+v; want it unchanged (succeeded, attempts 1, finished before the resume)", id, is, was)
		}
		others := 0
		for _, cl := range c.Backend.CallsFor(id) {
			if cl.Node != victim.Name && cl.Start.After(frozen) {
				others++
			}
		}
		if others != 1 {
			t.Errorf("task %s held by the frozen node ran %d times on the other nodes after the freeze, want 1", id, others)
		}
	}

	got := tally(t, l, views, c.Backend.Calls(nil)) // with the calls the resumed node made
	t.Logf("%s (answers %s)", got, l.Statuses())
	t.Logf("SIGSTOP of %s holding %d tasks: they ran on another node %s after the freeze (%s); %v results refused after SIGCONT",
		victim.Name, len(held), spread(rerun), leaseNote, lost())
	if len(held) == 0 {
		t.Errorf("%s held no task when frozen: the test proves nothing", victim.Name)
	}
	if got.N != n || got.lost != 0 || got.unexpected != 0 || got.duplicated > workers {
		t.Errorf("%s: want N=%d lost=0 unexpected=0 duplicated<=%d", got, n, workers)
	}
	duplicatedBy(t, c.Backend.Calls(nil), victim.Name)
	checkAttempts(t, after)
}
