package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

// resubmitter is what a function does that sends its input on to Ferry's
// own API as a new task of a function: it forwards only the traceparent it
// was invoked with (never Ferry-Hops), which is the loop the per-trace
// count exists for. Its failures are recorded for the test goroutine.
type resubmitter struct {
	api    atomic.Pointer[string] // Ferry's base URL, set once Ferry runs
	key    string
	client *http.Client

	mu       sync.Mutex
	ids      []string // tasks it submitted, in the order of the calls ("" until answered)
	problems []string
}

// newResubmitter returns a resubmitter that submits with the API key key;
// set its api before the first call.
func newResubmitter(t *testing.T, key string) *resubmitter {
	r := &resubmitter{key: key, client: checkedClient(t, 10*time.Second)}
	t.Cleanup(r.client.CloseIdleConnections)
	return r
}

// submit posts body as a task of fn with the traceparent of c.
func (r *resubmitter) submit(c *call, fn string, body []byte) {
	if err := r.post(c, fn, body); err != nil {
		r.mu.Lock()
		r.problems = append(r.problems, fmt.Sprintf("resubmitting call %s: %v", c.ID, err))
		r.mu.Unlock()
	}
}

func (r *resubmitter) post(c *call, fn string, body []byte) error {
	api := r.api.Load()
	if api == nil {
		return fmt.Errorf("called before Ferry's address is known")
	}
	req, err := http.NewRequest(http.MethodPost, *api+"/v1/functions/"+fn+"/tasks", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", c.TraceParent)
	// The call's place is taken before its task exists: the next call
	// (of that task) may be answered first.
	r.mu.Lock()
	slot := len(r.ids)
	r.ids = append(r.ids, "")
	r.mu.Unlock()
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v taskView
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(b, &v) != nil || v.ID == "" {
		return fmt.Errorf("status %d, want 202 with a task: %s", resp.StatusCode, b)
	}
	r.mu.Lock()
	r.ids[slot] = v.ID
	r.mu.Unlock()
	return nil
}

// submitted returns the ids of the tasks submitted so far and the problems.
func (r *resubmitter) submitted() (ids, problems []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...), append([]string(nil), r.problems...)
}

// traceIDs returns the trace ids of the calls' traceparents ("" for an
// invalid one).
func traceIDs(calls []call) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		if m := traceParentRE.FindStringSubmatch(c.TraceParent); m != nil {
			out[i] = m[1]
		}
	}
	return out
}

func TestTraceLoop(t *testing.T) {
	t.Parallel()
	const maxHops = 5
	loopRS, chainRS := newResubmitter(t, "acme-key"), newResubmitter(t, "acme-key")
	// loop sends every input back to itself, for ever.
	loopBE := newBackend(t, func(c *call, _ int) reply {
		loopRS.submit(c, "loop", c.Body)
		return echo(c)
	})
	// chain sends {"left": n-1} to itself while n > 0: a legitimate,
	// bounded chain of n+1 invocations in one trace.
	chainBE := newBackend(t, func(c *call, _ int) reply {
		var p struct {
			Left int `json:"left"`
		}
		_ = json.Unmarshal(c.Body, &p)
		if p.Left > 0 {
			chainRS.submit(c, "chain", []byte(fmt.Sprintf(`{"left": %d}`, p.Left-1)))
		}
		return echo(c)
	})
	rc := ferrytest.NewReceiver(t)
	f := startFerry(t, fmt.Sprintf(`
server: { listen: "{{listen}}" }
store: { embedded: { path: "{{data}}" } }
loop_guard: { max_hops: %d }
tenants:
  - { name: acme, api_keys: [acme-key] }
functions:
  - name: loop
    tenant: acme
    backend: { http: { url: %q, timeout: 10s } }
    destinations: { on_failure: [ %s ] }
  - name: chain
    tenant: acme
    backend: { http: { url: %q, timeout: 10s } }
    destinations: { on_failure: [ %s ] }
`, maxHops, loopBE.URL(), rc.YAML(), chainBE.URL(), rc.YAML()))
	f.key = "acme-key"
	api := f.URL("")
	loopRS.api.Store(&api)
	chainRS.api.Store(&api)

	first := f.submitOK(t, "loop", `{"loop": true}`, nil)
	chainFirst := f.submitOK(t, "chain", `{"left": 2}`, nil)

	// The chain is cut when the function has run max_hops times in the
	// trace: the task submitted by the last call is refused.
	var failed []taskView
	ferrytest.WaitFor(t, 30*time.Second, "a task of the loop to fail", func() bool {
		failed = listTasks(t, f, "function=loop&status=failed", 100)
		return len(failed) > 0
	})
	var ids []string // the resubmitter records an id just after Ferry's 202
	ferrytest.WaitFor(t, 5*time.Second, "the loop's resubmission of the failed task", func() bool {
		ids, _ = loopRS.submitted()
		return slices.Contains(ids, failed[0].ID)
	})
	if len(failed) != 1 || len(ids) != maxHops || failed[0].ID != ids[maxHops-1] {
		t.Fatalf("failed tasks %+v after %d resubmissions, want only the %dth task, the one submitted by call %d",
			failed, len(ids), maxHops+1, maxHops)
	}
	looped := failed[0].ID
	v := f.get(t, looped)
	if v.Attempts != 0 || v.Error == nil || v.Error.Code != "loop_detected" {
		t.Fatalf("task %d of the loop: %+v (error %+v), want failed, loop_detected, 0 attempts", maxHops+1, v, v.Error)
	}
	for i, id := range append([]string{first}, ids[:maxHops-1]...) {
		if v := f.waitFinal(t, id); v.Status != "succeeded" || v.Attempts != 1 {
			t.Errorf("task %d of the loop: %+v, want succeeded after 1 attempt", i+1, v)
		}
	}

	f.waitDelivered(t, looped)
	hooks := rc.Deliveries(looped)
	if len(hooks) != 1 {
		t.Fatalf("on_failure webhook received %d deliveries for the refused task, want 1", len(hooks))
	}
	if b := hooks[0].Body; b["type"] != "ferry.task.failed" || b["status"] != "failed" || b["attempts"] != 0.0 {
		t.Errorf("webhook body %s: want type ferry.task.failed, status failed, attempts 0", hooks[0].Raw)
	}
	if e, _ := hooks[0].Body["error"].(map[string]any); e == nil || e["code"] != "loop_detected" {
		t.Errorf("webhook error %v, want code loop_detected", hooks[0].Body["error"])
	}

	// Nothing keeps running: no task is queued or running and the backend
	// saw exactly max_hops calls, all in one trace, none carrying more
	// than one hop (the function drops Ferry-Hops).
	ferrytest.WaitFor(t, 10*time.Second, "no queued or running task", func() bool {
		return len(listIDs(t, f, "status=queued", 100)) == 0 && len(listIDs(t, f, "status=running", 100)) == 0
	})
	calls := loopBE.all()
	if len(calls) != maxHops {
		t.Fatalf("the looping backend saw %d calls, want exactly max_hops = %d", len(calls), maxHops)
	}
	traces := traceIDs(calls)
	for i, c := range calls {
		if traces[i] == "" || traces[i] != traces[0] {
			t.Errorf("call %d: traceparent %q, want one valid trace for the whole loop (first: %s)", i+1, c.TraceParent, traces[0])
		}
		if c.Hops != "1" {
			t.Errorf("call %d: Ferry-Hops %q, want 1 (the loop drops it)", i+1, c.Hops)
		}
	}
	if n := len(listIDs(t, f, "function=loop", 100)); n != maxHops+1 {
		t.Errorf("function loop has %d tasks, want %d", n, maxHops+1)
	}
	if _, problems := loopRS.submitted(); len(problems) != 0 {
		t.Errorf("the looping backend could not resubmit: %v", problems)
	}
	t.Logf("loop cut after %d invocations in trace %s; task %s refused with loop_detected", len(calls), traces[0], looped)

	// The bounded chain (3 invocations < max_hops) was not refused.
	chainIDs, problems := chainRS.submitted()
	if len(problems) != 0 {
		t.Fatalf("the chain backend could not resubmit: %v", problems)
	}
	if len(chainIDs) != 2 {
		t.Fatalf("the chain submitted %d tasks, want 2", len(chainIDs))
	}
	for i, id := range append([]string{chainFirst}, chainIDs...) {
		if v := f.waitFinal(t, id); v.Status != "succeeded" || v.Attempts != 1 {
			t.Errorf("chain task %d: %+v (error %+v), want succeeded after 1 attempt", i+1, v, v.Error)
		}
		if d := rc.Deliveries(id); len(d) != 0 {
			t.Errorf("chain task %d went to on_failure", i+1)
		}
	}
	chain := traceIDs(chainBE.all())
	if len(chain) != 3 || chain[0] == "" || chain[1] != chain[0] || chain[2] != chain[0] {
		t.Errorf("chain calls' trace ids %v, want 3 calls in one trace", chain)
	}
	if len(chain) > 0 && chain[0] == traces[0] {
		t.Errorf("the chain shares the loop's trace %s", traces[0])
	}

	// The refusal is visible as a metric, labelled by how it was found.
	m := f.mustDo(t, http.MethodGet, "/metrics", nil, nil)
	want := regexp.MustCompile(`(?m)^ferry_loops_detected_total\{[^}]*by="trace"[^}]*function="loop"[^}]*\} 1$`)
	if !want.Match(m.body) {
		t.Errorf("/metrics lacks ferry_loops_detected_total{by=\"trace\",function=\"loop\"} 1:\n%s", grepLines(m.body, "ferry_loops_detected_total"))
	}
}

// grepLines returns the lines of text that contain s.
func grepLines(text []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(text), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// selfLoopConfig is a config whose function f sends its successes to the
// kafka topic `out` and is triggered from topic `orders`.
const selfLoopConfig = `server:
  listen: 127.0.0.1:0
tenants:
  - { name: a, api_keys: [k] }
functions:
  - name: f
    tenant: a
    backend: { exec: { command: [cat] } }
    destinations:
      on_success:
        - kafka: { brokers: ["127.0.0.1:9092"], topic: out }
triggers:
  - name: t
    function: f
    source: { kafka: { brokers: ["127.0.0.1:9092"], topic: orders, group: g } }
`

func TestValidateWarnsAboutSelfLoop(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, yaml string) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	t.Run("SameTopic", func(t *testing.T) {
		path := write("loop.yaml", strings.Replace(selfLoopConfig, "topic: out", "topic: orders", 1))
		stdout, stderr, code := runFerry(t, "validate", "-c", path)
		if code != 0 {
			t.Fatalf("validate: exit %d, want 0 (a warning is not an error)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
		warn := regexp.MustCompile(`^` + regexp.QuoteMeta(path) +
			`:11: warning: functions\[0\]\.destinations\.on_success\[0\]: sends to kafka topic "orders", which trigger "t" reads`)
		if len(lines) != 2 || !warn.MatchString(lines[0]) || lines[1] != path+": ok" {
			t.Fatalf("validate printed:\n%s\nwant a line matching %s, then %q", stdout, warn, path+": ok")
		}
		t.Logf("validate: %s", lines[0])
	})

	t.Run("OtherTopic", func(t *testing.T) {
		path := write("noloop.yaml", selfLoopConfig)
		stdout, stderr, code := runFerry(t, "validate", "-c", path)
		if code != 0 || stdout != path+": ok\n" {
			t.Fatalf("validate: exit %d, output:\n%s\nstderr:\n%s\nwant exit 0 and only %q", code, stdout, stderr, path+": ok")
		}
	})
}
