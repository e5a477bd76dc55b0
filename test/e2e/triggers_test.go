package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/kafkatest"
	"github.com/ferrydev/ferry/test/brokers/redisstreamtest"
	"github.com/ferrydev/ferry/test/ferrytest"
)

// Trigger management end to end: a real `ferry serve` on a real broker,
// paused and resumed over the API, restarted while paused, and (on the
// Redis store) two processes that follow one pause.

// triggerView is the API's JSON form of a trigger.
type triggerView struct {
	Name      string `json:"name"`
	Tenant    string `json:"tenant"`
	Function  string `json:"function"`
	Kind      string `json:"kind"`
	State     string `json:"state"`
	Paused    bool   `json:"paused"`
	Connected bool   `json:"connected"`
	Lag       *int64 `json:"lag"`
	LastError string `json:"last_error"`
}

// triggers lists the key's triggers (GET /v1/triggers, 200).
func (f *ferryProc) triggers(t *testing.T) []triggerView {
	t.Helper()
	r := f.mustDo(t, http.MethodGet, "/v1/triggers", nil, nil)
	var body struct {
		Triggers []triggerView `json:"triggers"`
	}
	if r.status != http.StatusOK || json.Unmarshal(r.body, &body) != nil {
		t.Fatalf("GET /v1/triggers = %d %s", r.status, r.body)
	}
	return body.Triggers
}

// trigger reads one trigger (GET /v1/triggers/{name}, 200).
func (f *ferryProc) trigger(t *testing.T, name string) triggerView {
	t.Helper()
	return triggerAnswer(t, f.mustDo(t, http.MethodGet, "/v1/triggers/"+name, nil, nil))
}

// setPaused pauses or resumes a trigger (200).
func (f *ferryProc) setPaused(t *testing.T, name string, paused bool) triggerView {
	t.Helper()
	op := map[bool]string{true: "pause", false: "resume"}[paused]
	v := triggerAnswer(t, f.mustDo(t, http.MethodPost, "/v1/triggers/"+name+"/"+op, nil, nil))
	if v.Paused != paused || (paused && v.State != "paused") || (!paused && v.State == "paused") {
		t.Fatalf("%s answered %+v", op, v)
	}
	return v
}

func triggerAnswer(t *testing.T, r response) triggerView {
	t.Helper()
	var v triggerView
	if r.status != http.StatusOK || json.Unmarshal(r.body, &v) != nil {
		t.Fatalf("trigger answer %d %s", r.status, r.body)
	}
	return v
}

// inFlightRE finds ferry_trigger_in_flight of trigger orders in /metrics.
var inFlightRE = regexp.MustCompile(`(?m)^ferry_trigger_in_flight\{trigger="orders"\} (\S+)$`)

// waitSettled waits until the trigger orders has nothing in flight: every
// message handed to its workers was invoked and settled.
func (f *ferryProc) waitSettled(t *testing.T) {
	t.Helper()
	ferrytest.WaitFor(t, 30*time.Second, "orders has nothing in flight", func() bool {
		m := inFlightRE.FindSubmatch(f.mustDo(t, http.MethodGet, "/metrics", nil, nil).body)
		return m != nil && string(m[1]) == "0"
	})
}

// quiet checks that the backend receives no call for d: the one bounded
// wait of these tests, to see that nothing happens.
func quiet(t *testing.T, be *backend, d time.Duration, why string) {
	t.Helper()
	before := be.count()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if n := be.count(); n != before {
			t.Fatalf("%s: %d invocations within %v, want none", why, n-before, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// seqMsgs are n messages numbered from first, spread over 8 keys.
func seqMsgs(first, n int) []brokers.Msg {
	out := make([]brokers.Msg, n)
	for i := range out {
		out[i] = brokers.Msg{Key: fmt.Sprintf("k%d", (first+i)%8), Payload: []byte(strconv.Itoa(first + i))}
	}
	return out
}

// wantAll waits until the backend saw n distinct payloads (0..n-1) and
// nothing else; with once, it checks that none came twice.
func wantAll(t *testing.T, be *backend, n int, once bool) {
	t.Helper()
	seen := func() map[string]int {
		m := map[string]int{}
		for _, c := range be.all() {
			m[string(c.Body)]++
		}
		return m
	}
	ferrytest.WaitFor(t, 60*time.Second, fmt.Sprintf("%d messages delivered", n), func() bool { return len(seen()) >= n })
	got := seen()
	for i := range n {
		switch c := got[strconv.Itoa(i)]; {
		case c == 0:
			t.Errorf("message %d never invoked", i)
		case c > 1 && once:
			t.Errorf("message %d invoked %d times, want once", i, c)
		case c > 1:
			t.Logf("message %d invoked %d times (at least once)", i, c)
		}
	}
	if len(got) != n {
		t.Errorf("%d distinct messages invoked, want %d", len(got), n)
	}
}

const pauseConfig = `
server: { listen: "{{listen}}", shutdown_timeout: 10s }
%s
tenants:
  - { name: acme, api_keys: [acme-key] }
  - { name: other, api_keys: [other-key] }
functions:
  - name: work
    tenant: acme
    backend: { http: { url: %q, timeout: 5s } }
  - name: idle
    tenant: other
    backend: { http: { url: %q, timeout: 5s } }
triggers:
  - name: orders
    function: work
    source: %s
    start: earliest
`

// slow answers every call after 10 ms, so that a run of messages takes
// long enough to pause it half way.
func slow(c *call, _ int) reply {
	r := echo(c)
	r.Hold = 10 * time.Millisecond
	return r
}

// TestTriggerPauseResume: paused half way through a backlog, a trigger
// invokes nothing more once what it had in flight settled, even as more
// messages arrive; its lag grows; a restart keeps it paused; resumed, it
// delivers every message exactly once. Another tenant cannot see or touch
// it.
func TestTriggerPauseResume(t *testing.T) {
	t.Parallel()
	for _, b := range []brokers.Broker{kafkatest.New(), redisstreamtest.New()} {
		t.Run(b.Name(), func(t *testing.T) {
			t.Parallel()
			brokers.Require(t, b.Name())
			testPauseResume(t, b)
		})
	}
}

func testPauseResume(t *testing.T, b brokers.Broker) {
	const before, during = 200, 50 // produced before the pause, and during it
	tp := b.NewTopic(t, 2)
	tp.Produce(t, seqMsgs(0, before))
	be := newBackend(t, slow)
	f := startFerry(t, fmt.Sprintf(pauseConfig, `store: { embedded: { path: "{{data}}" } }`,
		be.URL(), be.URL(), tp.SourceYAML(fmt.Sprintf("pause-%d", time.Now().UnixNano()))))
	f.key = "acme-key"

	ferrytest.WaitFor(t, 30*time.Second, "20 invocations", func() bool { return be.count() >= 20 })
	v := f.setPaused(t, "orders", true)
	if v.Tenant != "acme" || v.Function != "work" || v.Kind != b.Name() {
		t.Fatalf("pause answered %+v", v)
	}
	atPause := be.count()
	f.waitSettled(t)
	settled := be.count()
	t.Logf("%d invoked when the pause answered, %d once in-flight settled", atPause, settled)
	if settled >= before {
		t.Fatalf("all %d messages invoked before the pause took", before)
	}

	tp.Produce(t, seqMsgs(before, during))
	quiet(t, be, 3*time.Second, "paused")
	ferrytest.WaitFor(t, 30*time.Second, "the lag to count what the pause holds back", func() bool {
		l := f.trigger(t, "orders").Lag
		return l != nil && *l >= during
	})

	// Another tenant: not listed, 404 like an unknown trigger.
	other := f.as("other-key")
	if ts := other.triggers(t); len(ts) != 0 {
		t.Errorf("tenant other lists %+v, want nothing", ts)
	}
	for _, path := range []string{"/v1/triggers/orders/resume", "/v1/triggers/nope/resume"} {
		if r := other.mustDo(t, http.MethodPost, path, nil, nil); r.status != http.StatusNotFound {
			t.Errorf("POST %s as tenant other = %d %s, want 404", path, r.status, r.body)
		}
	}
	if r := other.mustDo(t, http.MethodGet, "/v1/triggers/orders", nil, nil); r.status != http.StatusNotFound {
		t.Errorf("GET /v1/triggers/orders as tenant other = %d %s, want 404", r.status, r.body)
	}
	if r := f.bad().mustDo(t, http.MethodPost, "/v1/triggers/orders/resume", nil, map[string]string{"Authorization": ""}); r.status != http.StatusUnauthorized {
		t.Errorf("resume without a key = %d %s, want 401", r.status, r.body)
	}
	if r := f.bad().mustDo(t, http.MethodGet, "/v1/triggers/orders/pause", nil, nil); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
		t.Errorf("GET .../pause = %d, Allow %q; want 405, POST", r.status, r.header.Get("Allow"))
	}

	f.Term()
	f.Restart()
	if v := f.trigger(t, "orders"); v.State != "paused" {
		t.Fatalf("after the restart: %+v, want paused", v)
	}
	quiet(t, be, 3*time.Second, "paused across a restart")

	f.setPaused(t, "orders", false)
	wantAll(t, be, before+during, true)
	ferrytest.WaitFor(t, 30*time.Second, "orders running", func() bool { return f.trigger(t, "orders").State == "running" })
}

// TestTriggerPauseAcrossNodes: two processes on one Redis store run the
// same trigger; a pause through one stops the trigger on both, and a
// resume through the other lets every message through (at least once:
// the second node's joining rebalances the group while the first reads).
func TestTriggerPauseAcrossNodes(t *testing.T) {
	t.Parallel()
	brokers.Require(t, brokers.Kafka, brokers.Redis)
	const before, during = 100, 50
	tp := kafkatest.New().NewTopic(t, 4)
	tp.Produce(t, seqMsgs(0, before))
	be := newBackend(t, slow)
	store := fmt.Sprintf(`store: { redis: { url: %q, prefix: %q } }`, brokers.Addr(brokers.Redis), ferrytest.RedisPrefix(t))
	cfg := fmt.Sprintf(pauseConfig, store, be.URL(), be.URL(), tp.SourceYAML(fmt.Sprintf("nodes-%d", time.Now().UnixNano())))
	a, b := startFerry(t, cfg), startFerry(t, cfg)
	a.key, b.key = "acme-key", "acme-key"

	ferrytest.WaitFor(t, 30*time.Second, "20 invocations", func() bool { return be.count() >= 20 })
	a.setPaused(t, "orders", true)
	ferrytest.WaitFor(t, 10*time.Second, "node b to follow the pause", func() bool { return b.trigger(t, "orders").Paused })
	a.waitSettled(t)
	b.waitSettled(t)
	tp.Produce(t, seqMsgs(before, during))
	quiet(t, be, 3*time.Second, "paused through node a")

	b.setPaused(t, "orders", false)
	ferrytest.WaitFor(t, 10*time.Second, "node a to follow the resume", func() bool { return !a.trigger(t, "orders").Paused })
	wantAll(t, be, before+during, false)
}
