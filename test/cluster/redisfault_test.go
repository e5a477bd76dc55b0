package cluster

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// everyNode waits until want(node) holds for every node and returns how
// long that took; it reports the nodes that never got there.
func everyNode(t *testing.T, nodes []*node, timeout time.Duration, what string, want func(*node) bool) time.Duration {
	t.Helper()
	began := time.Now()
	for _, n := range nodes {
		if !waitFor(timeout-time.Since(began), func() bool { return want(n) }) {
			t.Errorf("%s: not %s within %s", n.Name, what, timeout)
		}
	}
	return time.Since(began)
}

// TestRedisKill9: 3 nodes under a steady stream of submits; Redis is
// killed with kill -9 and restarted on the same port and directory
// (appendfsync always). Every task answered 202 runs (lost 0); submits
// during the outage may fail (503, counted as not accepted); /readyz is
// 503 on every node while Redis is down and 200 again after, without
// restarting any node, which then take submits again.
func TestRedisKill9(t *testing.T) {
	t.Parallel()
	const (
		workers = 16
		timeout = 2 * time.Second
	)
	c := newCluster(t, spec{Nodes: 3, Body: workBody(workers, timeout, 3*workers)})
	c.Backend.SetLatency("acme/work", 20*time.Millisecond, 40*time.Millisecond)
	l := newLedger()
	s := &submitter{c: c, Key: "acme-key", Fn: "work"} // one try each: no retry through the outage

	var (
		seq  atomic.Int64
		stop = make(chan struct{})
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.Submit(l, int(seq.Add(1)))
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	if !waitFor(time.Minute, func() bool { return c.Backend.Completed("acme/work") >= 300 }) {
		t.Fatalf("the backend answered only %d calls in a minute", c.Backend.Completed("acme/work"))
	}
	c.Redis.Kill9()
	acceptedAtKill := l.Accepted()
	down := everyNode(t, c.Nodes, 20*time.Second, "503 on /readyz", func(n *node) bool { return n.Ready() == http.StatusServiceUnavailable })
	c.Redis.Restart()
	restarted := time.Now()
	up := everyNode(t, c.Nodes, 30*time.Second, "200 on /readyz", func(n *node) bool { return n.Ready() == http.StatusOK })
	acceptedAtRestart := l.Accepted()
	if !waitFor(30*time.Second, func() bool { return l.Accepted() >= acceptedAtRestart+300 }) {
		t.Errorf("only %d submits accepted in the 30s after Redis came back", l.Accepted()-acceptedAtRestart)
	}
	close(stop)
	wg.Wait()
	resumed := time.Since(restarted)

	views := c.waitFinal(t, c.Nodes, "acme-key", l.IDs(nil), timeout+leaseGrace+2*time.Minute)
	calls := c.Backend.Calls(nil)
	got := tally(t, l, views, calls)
	t.Logf("%s (answers %s; %d ambiguous submits, %d of them ran)", got, l.Statuses(), got.ambiguous, got.ambiguousRan)
	t.Logf("Redis kill -9 after %d accepted: every /readyz 503 within %.2fs; after the restart every /readyz 200 within %.2fs, 300 more accepted within %.2fs",
		acceptedAtKill, down.Seconds(), up.Seconds(), resumed.Seconds())
	if got.lost != 0 || got.unexpected != 0 || got.duplicated > 3*workers {
		t.Errorf("%s: want lost=0 unexpected=0 duplicated<=%d (the tasks in flight at the kill)", got, 3*workers)
	}
	checkAttempts(t, views)
}

// TestRedisMaxmemory: Redis with maxmemory 20mb and noeviction, tasks of
// about 200 KiB submitted (their calls held) until the store is full.
// Submit then answers 503 unavailable or 507 store_full, never anything
// else; nothing accepted is evicted (every accepted task reads back while
// Redis is full) and, once the calls are let go, every accepted task
// succeeds.
func TestRedisMaxmemory(t *testing.T) {
	t.Parallel()
	const (
		payload  = 200 << 10
		maxTries = 400
	)
	c := newCluster(t, spec{Nodes: 3, Redis: []string{"--maxmemory", "20mb", "--maxmemory-policy", "noeviction"},
		Body: workBody(4, 10*time.Second, 12)})
	release := c.Backend.Hold("acme/work")
	defer release()
	pad := strings.Repeat("x", payload)
	l := newLedger()
	s := &submitter{c: c, Key: "acme-key", Fn: "work", Payload: func(seq int) []byte {
		return []byte(fmt.Sprintf(`{"seq":%d,"pad":%q}`, seq, pad))
	}}
	refusedInARow, tries := 0, 0
	for ; tries < maxTries && refusedInARow < 10; tries++ {
		before := l.Accepted()
		s.Submit(l, tries)
		if l.Accepted() > before {
			refusedInARow = 0
		} else {
			refusedInARow++
		}
	}
	used, limit := c.Redis.Info("used_memory_human"), c.Redis.Info("maxmemory_human")
	if refusedInARow < 10 {
		t.Fatalf("%d submits of %d KiB and the store never refused (answers %s; used_memory %s of %s)", tries, payload>>10, l.Statuses(), used, limit)
	}
	l.mu.Lock()
	for seq, status := range l.refused {
		t.Errorf("seq %d: refused with %d, want 503 or 507 when the store is full", seq, status)
	}
	for seq, why := range l.ambiguous {
		if !strings.Contains(why, `"code":"unavailable"`) && !strings.Contains(why, `"code":"store_full"`) {
			t.Errorf("seq %d: %s; want 503 unavailable or 507 store_full", seq, why)
		}
	}
	l.mu.Unlock()

	// Full: every accepted task still reads back, nothing was evicted.
	ids := l.IDs(nil)
	for i, id := range ids {
		if v := c.get(c.Nodes[i%len(c.Nodes)], "acme-key", id); v.HTTPStatus != 0 || v.Status == "" || strings.HasPrefix(v.Status, "un") {
			t.Errorf("accepted task %s unreadable while Redis is full: %s", id, v.Status)
		}
	}
	if ev := c.Redis.Info("evicted_keys"); ev != "0" {
		t.Errorf("Redis evicted %s keys", ev)
	}

	release()
	views := c.waitFinal(t, c.Nodes, "acme-key", ids, 2*time.Minute)
	got := tally(t, l, views, c.Backend.Calls(nil))
	t.Logf("%s (answers %s; %d ambiguous submits, %d of them ran)", got, l.Statuses(), got.ambiguous, got.ambiguousRan)
	t.Logf("maxmemory 20mb, noeviction: %d tasks of %d KiB accepted before the store refused; used_memory %s of %s when full",
		got.N, payload>>10, used, limit)
	if got.N == 0 || got.lost != 0 || got.unexpected != 0 || got.duplicated != 0 {
		t.Errorf("%s: want N>0 lost=0 unexpected=0 duplicated=0", got)
	}
}
