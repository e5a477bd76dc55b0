package cluster

import (
	"net/http"
	"testing"
	"time"
)

// TestHarness checks the harness itself on what exists without a shared
// store: one node on the embedded store (start, submit, read back, count,
// freeze, thaw, kill -9, restart, metrics) and the redis-server process
// (an acknowledged write survives kill -9 and restart on the same dir).
func TestHarness(t *testing.T) {
	t.Parallel()
	t.Run("Node", func(t *testing.T) {
		t.Parallel()
		const n = 200
		c := newCluster(t, spec{Nodes: 1, Embedded: true, Body: `
dispatcher: { workers: 8 }
tenants:
  - { name: acme, api_keys: [acme-key] }
functions:
  - name: work
    tenant: acme
    backend: { http: { url: "{{backend}}/work", timeout: 5s } }
    max_concurrency: 8
`})
		c.Backend.SetLatency("acme/work", 5*time.Millisecond, 15*time.Millisecond)
		l := newLedger()
		s := &submitter{c: c, Key: "acme-key", Fn: "work"}
		s.Many(l, 0, n, 8)
		views := c.waitFinal(t, c.Nodes, "acme-key", l.IDs(nil), 60*time.Second)
		got := tally(t, l, views, c.Backend.Calls(nil))
		t.Logf("%s (answers %s, peak %d)", got, l.Statuses(), c.Backend.Peak("acme/work"))
		if got.N != n || got.lost != 0 || got.duplicated != 0 || got.unexpected != 0 {
			t.Errorf("%s: want N=%d lost=0 duplicated=0 unexpected=0", got, n)
		}
		if p := c.Backend.Peak("acme/work"); p > 8 || p < 2 {
			t.Errorf("peak in flight %d, want 2..8", p)
		}
		for _, cl := range c.Backend.Calls(nil) {
			if cl.Node != "n1" || cl.Function != "acme/work" || cl.Seq < 0 {
				t.Fatalf("call %+v: want node n1, function acme/work and a seq", cl)
			}
		}
		node := c.Nodes[0]
		if m := node.Metric("ferry_task_outcomes_total", `outcome="succeeded"`); m != n {
			t.Errorf("ferry_task_outcomes_total{outcome=succeeded} = %v, want %d", m, n)
		}

		node.Freeze()
		if got := node.Ready(); got != 0 {
			t.Errorf("a frozen node answered /readyz with %d", got)
		}
		node.Thaw()
		if got := node.Ready(); got != http.StatusOK {
			t.Errorf("a thawed node answered /readyz with %d, want 200", got)
		}

		// Submitted, then killed and restarted: the tasks run.
		release := c.Backend.Hold("acme/work")
		s.Many(l, n, 20, 4)
		if !waitFor(10*time.Second, func() bool { return c.Backend.InFlight("acme/work") >= 4 }) {
			t.Fatal("no calls in flight before the kill")
		}
		node.Kill9()
		release()
		node.Restart()
		views = c.waitFinal(t, c.Nodes, "acme-key", l.IDs(nil), 60*time.Second)
		got = tally(t, l, views, c.Backend.Calls(nil))
		t.Logf("after kill -9 and restart: %s", got)
		if got.N != n+20 || got.lost != 0 || got.unexpected != 0 || got.duplicated > 8 {
			t.Errorf("%s: want N=%d lost=0 unexpected=0 duplicated<=8", got, n+20)
		}
	})
	t.Run("Redis", func(t *testing.T) {
		t.Parallel()
		r := startRedis(t)
		if _, err := r.Do("SET", "k", "v"); err != nil {
			t.Fatal(err)
		}
		r.Kill9()
		if _, err := r.Do("PING"); err == nil {
			t.Fatal("redis answers after kill -9")
		}
		r.Restart()
		if v, err := r.Do("GET", "k"); err != nil || v != "v" {
			t.Fatalf("GET k after kill -9 and restart = %q, %v; want v", v, err)
		}
		if r.Info("used_memory") == "" {
			t.Error("INFO has no used_memory")
		}
	})
	t.Run("Window", func(t *testing.T) {
		t.Parallel()
		at := func(ms ...int) []time.Time {
			var out []time.Time
			for _, m := range ms {
				out = append(out, time.Unix(0, 0).Add(time.Duration(m)*time.Millisecond))
			}
			return out
		}
		for _, c := range []struct {
			ms   []int
			want int
		}{{nil, 0}, {[]int{0}, 1}, {[]int{0, 999, 1000, 1500, 1999}, 3}, {[]int{5, 0, 3000, 10}, 3}} {
			if got := maxInWindow(at(c.ms...), time.Second); got != c.want {
				t.Errorf("maxInWindow(%v) = %d, want %d", c.ms, got, c.want)
			}
		}
	})
}
