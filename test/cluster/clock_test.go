package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"
)

// TestClockAhead: n2's clock is 30 s ahead and n3's 2 min ahead
// (FERRY_TEST_CLOCK_OFFSET, which `ferry serve` takes as its clock); n1's
// is right. Leases, delays and retry times are counted on Redis's clock,
// so the fast nodes steal no lease from a slow task still within it (the
// slow tasks run longer than a lease, kept by its renewals: no task runs
// twice), run no delayed task early, whichever node took it (every call
// starts at least its delay after its submit was sent), nor late by
// their offset, and a retry waits its backoff whichever node decided it.
//
// Both offsets are longer than the 15 s heartbeat lease, so a node that
// judged expiry by its own clock would steal every running task at once;
// without heartbeats (lease = timeout + 30 s) only the 2 min node would.
func TestClockAhead(t *testing.T) {
	t.Parallel()
	const (
		slowTasks = 12
		slowTime  = 17 * time.Second // each slow call: longer than a 15 s lease
		timeout   = 20 * time.Second
		delay     = 4 * time.Second
		perNode   = 5 // delayed and failing-once tasks submitted through each node
		backoff   = time.Second
	)
	c := newCluster(t, spec{Nodes: 3,
		Env: map[int][]string{1: {"FERRY_TEST_CLOCK_OFFSET=30s"}, 2: {"FERRY_TEST_CLOCK_OFFSET=2m"}},
		Body: fmt.Sprintf(`
dispatcher: { workers: 16 }
tenants:
  - { name: acme, api_keys: [acme-key], max_concurrency: 100 }
functions:
  - name: slow
    tenant: acme
    backend: { http: { url: "{{backend}}/slow", timeout: %s } }
    max_concurrency: %d
  - name: later
    tenant: acme
    backend: { http: { url: "{{backend}}/later", timeout: %s } }
    max_concurrency: 10
  - name: flaky
    tenant: acme
    backend: { http: { url: "{{backend}}/flaky", timeout: %s } }
    max_concurrency: 10
    retry: { max_attempts: 3, initial_interval: %s, multiplier: 2 }
`, timeout, slowTasks, timeout, timeout, backoff)})
	c.Backend.SetLatency("acme/slow", slowTime, slowTime)
	c.Backend.SetLatency("acme/later", 5*time.Millisecond, 10*time.Millisecond)
	c.Backend.FailFirst("acme/flaky")

	l := newLedger()
	// Slow tasks through the right clock (seq 0..), delayed ones through
	// every node (seq 1000..): submitted together.
	slow := &submitter{c: c, Key: "acme-key", Fn: "slow", Nodes: c.Nodes[:1], Retry: 30 * time.Second}
	later := &submitter{c: c, Key: "acme-key", Fn: "later", Header: map[string]string{"Ferry-Delay": delay.String()}, Retry: 30 * time.Second}
	done := make(chan struct{})
	flaky := &submitter{c: c, Key: "acme-key", Fn: "flaky", Retry: 30 * time.Second}
	go func() {
		defer close(done)
		later.Many(l, 1000, perNode*len(c.Nodes), perNode*len(c.Nodes))
	}()
	flaky.Many(l, 2000, perNode*len(c.Nodes), perNode*len(c.Nodes))
	slow.Many(l, 0, slowTasks, slowTasks)
	<-done
	const n = slowTasks + 2*perNode*3

	views := c.waitFinal(t, c.Nodes, "acme-key", l.IDs(nil), 2*time.Minute)
	calls := c.Backend.Calls(nil)
	got := tally(t, l, views, calls)
	if got.N != n || got.lost != 0 || got.unexpected != 0 || got.duplicated != 0 {
		t.Errorf("%s: want N=%d lost=0 unexpected=0 duplicated=0 (no lease stolen)", got, n)
	}

	// Delays: not early, not late by a clock offset. Per submitting node.
	l.mu.Lock()
	sent := l.sent
	l.mu.Unlock()
	type span struct{ early, late time.Duration }
	per := map[string]*span{}
	ranOn := map[string]int{}
	retried := map[string]*span{} // per node of the failed first attempt
	for _, cl := range calls {
		if cl.Function == "acme/slow" {
			ranOn[cl.Node]++
			continue
		}
		if cl.Function == "acme/flaky" {
			cs := c.Backend.CallsFor(cl.ID)
			if cl.Attempt != "1" {
				continue
			}
			if len(cs) != 2 {
				t.Errorf("failing-once task %s: %d calls, want 2", cl.ID, len(cs))
				continue
			}
			wait := cs[1].Start.Sub(cs[0].End)
			s := retried[cl.Node]
			if s == nil {
				s = &span{early: wait, late: wait}
				retried[cl.Node] = s
			}
			s.early, s.late = min(s.early, wait), max(s.late, wait)
			if wait < backoff/2-50*time.Millisecond || wait > backoff*3/2+5*time.Second {
				t.Errorf("failing-once task %s failed on %s, retried on %s %s later; want %s..%s (backoff %s ± 50%%)",
					cl.ID, cl.Node, cs[1].Node, wait, backoff/2, backoff*3/2, backoff)
			}
			continue
		}
		via := c.Nodes[cl.Seq%len(c.Nodes)].Name // the submitter's round-robin (no retry was needed)
		wait := cl.Start.Sub(sent[cl.Seq])
		s := per[via]
		if s == nil {
			s = &span{early: wait, late: wait}
			per[via] = s
		}
		s.early, s.late = min(s.early, wait), max(s.late, wait)
		if wait < delay {
			t.Errorf("task %s (Ferry-Delay %s, submitted through %s) ran on %s %s after its submit: early", cl.ID, delay, via, cl.Node, wait)
		}
		if wait > delay+10*time.Second {
			t.Errorf("task %s (Ferry-Delay %s, submitted through %s) ran on %s %s after its submit: late", cl.ID, delay, via, cl.Node, wait)
		}
	}
	// The witness that the offsets took: a node logs the time of the
	// next attempt after a failed one by its own clock ("retry_at"), and
	// the log line's "time" by the real one.
	offsets := map[string]time.Duration{"n1": 0, "n2": 30 * time.Second, "n3": 2 * time.Minute}
	witnessed := 0
	for _, n := range c.Nodes {
		ahead, ok := retryAhead(t, n)
		if !ok {
			continue
		}
		if n.Name != "n1" {
			witnessed++
		}
		want := offsets[n.Name]
		t.Logf("%s's clock (FERRY_TEST_CLOCK_OFFSET %s): its retry_at was %.2fs ahead of real time (offset + backoff)", n.Name, want, ahead.Seconds())
		if ahead < want || ahead > want+backoff*3/2+5*time.Second {
			t.Errorf("%s logged retry_at %s ahead of its log time: want its clock offset %s plus the backoff (FERRY_TEST_CLOCK_OFFSET not honoured?)", n.Name, ahead, want)
		}
	}
	if witnessed == 0 {
		t.Errorf("no fast node ran a failing-once task: nothing shows its clock was off")
	}
	t.Logf("%s (answers %s)", got, l.Statuses())
	for _, n := range c.Nodes {
		if s := per[n.Name]; s != nil {
			t.Logf("delay %s, submitted through %s: ran %.2fs..%.2fs after the submit", delay, n.Name, s.early.Seconds(), s.late.Seconds())
		}
	}
	for _, n := range c.Nodes {
		if s := retried[n.Name]; s != nil {
			t.Logf("retry after a 503 on %s (backoff %s ± 50%%): next attempt %.2fs..%.2fs later", n.Name, backoff, s.early.Seconds(), s.late.Seconds())
		}
	}
	t.Logf("slow tasks (%s each; %s) ran on %v, each once", slowTime, leaseNote, ranOn)
}

// retryAhead reads the node's log for its retry decisions ("attempt
// failed; retrying") and returns by how much the smallest retry_at was
// ahead of the line's time; false when there is none.
func retryAhead(t *testing.T, n *node) (time.Duration, bool) {
	t.Helper()
	b, err := os.ReadFile(n.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	var least time.Duration
	for _, line := range bytes.Split(b, []byte("\n")) {
		var e struct {
			Msg     string    `json:"msg"`
			Time    time.Time `json:"time"`
			RetryAt time.Time `json:"retry_at"`
		}
		if json.Unmarshal(line, &e) != nil || e.Msg != "attempt failed; retrying" || e.RetryAt.IsZero() {
			continue
		}
		if d := e.RetryAt.Sub(e.Time); !found || d < least {
			least, found = d, true
		}
	}
	return least, found
}
