package cluster

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// call is one request the backend received.
type call struct {
	ID       string // ce-id: the task id
	Seq      int    // "seq" of the JSON payload (-1 when it has none)
	Node     string // the node that sent it ("n1", ...): the first segment of the path
	Function string // "tenant/function", from ce-source
	Attempt  string // Ferry-Attempt
	Time     string // ce-time
	Start    time.Time
	End      time.Time // when the answer was written (zero if never)
	// Completed: the handler wrote its answer (the node may not have read
	// it: it may have died or be frozen).
	Completed bool
}

// backend is the function every node calls: config URLs end in /<node>/
// (see spec.Body), so each call says which node sent it. It answers 200
// with a small JSON body after the latency set for the function, unless
// the function is held (or fails first); it counts calls per task, per function
// and per node, the calls in flight now and at their peak.
type backend struct {
	srv *httptest.Server

	mu        sync.Mutex
	calls     []*call
	byID      map[string][]*call
	started   map[string]int // per function
	completed map[string]int // per function
	inFlight  map[string]int // per function, now
	peak      map[string]int // per function, highest inFlight seen
	latency   map[string][2]time.Duration
	gates     map[string]chan struct{}
	failFirst map[string]bool
}

func newBackend(t *testing.T) *backend {
	t.Helper()
	b := &backend{
		byID: map[string][]*call{}, started: map[string]int{}, completed: map[string]int{},
		inFlight: map[string]int{}, peak: map[string]int{},
		latency: map[string][2]time.Duration{}, gates: map[string]chan struct{}{}, failFirst: map[string]bool{},
	}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(func() {
		b.mu.Lock()
		for fn, g := range b.gates {
			close(g)
			delete(b.gates, fn)
		}
		b.mu.Unlock()
		b.srv.Close()
	})
	return b
}

// URL is the backend's base URL (a config appends /<node>/<anything>).
func (b *backend) URL() string { return b.srv.URL }

// SetLatency makes the calls of fn ("tenant/function") take a uniformly
// random time in [lo, hi].
func (b *backend) SetLatency(fn string, lo, hi time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.latency[fn] = [2]time.Duration{lo, max(lo, hi)}
}

// FailFirst makes the first call of every task of fn answer 503 (a
// retryable failure): the task's second attempt then follows the retry
// schedule.
func (b *backend) FailFirst(fn string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failFirst[fn] = true
}

// Hold makes the calls of fn wait (after their latency) until the
// returned release is called; release is idempotent.
func (b *backend) Hold(fn string) (release func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	g := make(chan struct{})
	b.gates[fn] = g
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			if b.gates[fn] == g {
				delete(b.gates, fn)
			}
			b.mu.Unlock()
			close(g)
		})
	}
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := &call{
		ID: r.Header.Get("ce-id"), Seq: -1, Attempt: r.Header.Get("Ferry-Attempt"), Time: r.Header.Get("ce-time"), Start: time.Now(),
		Function: strings.TrimPrefix(r.Header.Get("ce-source"), "/ferry/async/"),
	}
	c.Node, _, _ = strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	var p struct {
		Seq *int `json:"seq"`
	}
	if json.Unmarshal(body, &p) == nil && p.Seq != nil {
		c.Seq = *p.Seq
	}

	b.mu.Lock()
	b.calls = append(b.calls, c)
	b.byID[c.ID] = append(b.byID[c.ID], c)
	b.started[c.Function]++
	b.inFlight[c.Function]++
	b.peak[c.Function] = max(b.peak[c.Function], b.inFlight[c.Function])
	lat, gate := b.latency[c.Function], b.gates[c.Function]
	status := http.StatusOK
	if b.failFirst[c.Function] && len(b.byID[c.ID]) == 1 {
		status = http.StatusServiceUnavailable
	}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.inFlight[c.Function]--
		b.mu.Unlock()
	}()

	d := lat[0]
	if lat[1] > lat[0] {
		d += rand.N(lat[1] - lat[0])
	}
	if d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return
		}
	}
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	b.mu.Lock()
	c.End, c.Completed = time.Now(), true
	b.completed[c.Function]++
	b.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"ok":true}`))
}

// Started counts the calls of fn so far; Completed those answered.
func (b *backend) Started(fn string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.started[fn]
}

// Completed counts the calls of fn answered so far.
func (b *backend) Completed(fn string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.completed[fn]
}

// Peak is the most calls of fn that were in flight at once.
func (b *backend) Peak(fn string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.peak[fn]
}

// InFlight counts the calls of fn in flight now.
func (b *backend) InFlight(fn string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inFlight[fn]
}

// Calls returns copies of the calls keep selects (all when keep is nil),
// in arrival order.
func (b *backend) Calls(keep func(*call) bool) []call {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []call
	for _, c := range b.calls {
		if keep == nil || keep(c) {
			out = append(out, *c)
		}
	}
	return out
}

// CallsFor returns copies of the calls of one task, in arrival order.
func (b *backend) CallsFor(id string) []call {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]call, len(b.byID[id]))
	for i, c := range b.byID[id] {
		out[i] = *c
	}
	return out
}

// Seen reports whether every id has a call answered (Completed).
func (b *backend) Seen(ids []string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		ok := false
		for _, c := range b.byID[id] {
			ok = ok || c.Completed
		}
		if !ok {
			return false
		}
	}
	return true
}

// maxInWindow is the most start times within any window of length w
// (a sliding window anchored at each start).
func maxInWindow(starts []time.Time, w time.Duration) int {
	s := append([]time.Time(nil), starts...)
	sort.Slice(s, func(i, j int) bool { return s[i].Before(s[j]) })
	top, j := 0, 0
	for i := range s {
		for s[i].Sub(s[j]) >= w {
			j++
		}
		top = max(top, i-j+1)
	}
	return top
}
