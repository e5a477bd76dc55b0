// Package traces runs real `ferry serve` processes that export their spans
// over OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT) to a receiver started by the
// test (internal/telemetry/otlptest), and checks what arrives: the spans
// of an async task and of a Kafka trigger's batch, their parent links and
// attributes, and the traceparents the backend and the destination get.
package traces

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/internal/telemetry/otlptest"
	"github.com/ferrydev/ferry/test/ferrytest"
)

// within bounds each wait: the process built with -race, brokers, export.
const within = 60 * time.Second

func TestMain(m *testing.M) {
	code := m.Run()
	ferrytest.Cleanup()
	os.Exit(code)
}

// exportEnv points a ferry process at rcv; delay is the batch span
// processor's delay in ms (OTEL_BSP_SCHEDULE_DELAY). Variables the
// tester's environment may set are reset.
func exportEnv(rcv *otlptest.Receiver, delay string) []string {
	return []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + rcv.URL(), "OTEL_BSP_SCHEDULE_DELAY=" + delay,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=", "OTEL_EXPORTER_OTLP_PROTOCOL=", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=",
		"OTEL_SERVICE_NAME=", "OTEL_RESOURCE_ATTRIBUTES=", "OTEL_TRACES_SAMPLER=", "OTEL_SDK_DISABLED=", "OTEL_TRACES_EXPORTER=",
	}
}

// function is an HTTP backend that records the traceparent of each call
// and answers 200 with {"ok": true}.
type function struct {
	srv *httptest.Server
	mu  sync.Mutex
	tps []string
}

func newFunction(t *testing.T) *function {
	f := &function{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		f.mu.Lock()
		f.tps = append(f.tps, r.Header.Get("traceparent"))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok": true}`))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *function) traceParents() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.tps...)
}

// one returns the only span of spans, failing the test otherwise.
func one(t *testing.T, what string, spans []otlptest.Span, all []otlptest.Span) otlptest.Span {
	t.Helper()
	if len(spans) != 1 {
		t.Fatalf("%d %s spans, want 1; received:\n%s", len(spans), what, otlptest.Dump(all))
	}
	return spans[0]
}

// checkAttrs compares attributes (values as the receiver decodes them).
func checkAttrs(t *testing.T, s otlptest.Span, want map[string]any) {
	t.Helper()
	for k, v := range want {
		got, _ := json.Marshal(s.Attributes[k])
		exp, _ := json.Marshal(v)
		if string(got) != string(exp) {
			t.Errorf("%s: %s = %s, want %s", s.Name, k, got, exp)
		}
	}
}

// childOf checks that s is a child of parent in parent's trace.
func childOf(t *testing.T, s, parent otlptest.Span) {
	t.Helper()
	if s.TraceID != parent.TraceID || s.ParentSpanID != parent.SpanID {
		t.Errorf("%s: trace %s parent %s; want a child of %s (trace %s span %s)", s.Name, s.TraceID, s.ParentSpanID,
			parent.Name, parent.TraceID, parent.SpanID)
	}
}

// TestTaskTrace: a task submitted with a caller's traceparent is one
// trace: ferry.submit (under the caller) → ferry.attempt → the
// ferry.backend.http call, whose traceparent the function receives; the
// webhook delivery is ferry.deliver under the submit span, and the
// webhook gets its traceparent. The batch processor's delay is a minute,
// so the spans arrive only through the flush at shutdown (SIGTERM).
func TestTaskTrace(t *testing.T) {
	rcv := otlptest.New(t)
	fn := newFunction(t)
	hook := ferrytest.NewReceiver(t)
	p := ferrytest.StartConfigEnv(t, `
server: { listen: "{{listen}}", shutdown_timeout: 10s }
store: { embedded: { path: "{{data}}" } }
tenants: [ { name: demo, api_keys: [demo-key] } ]
functions:
  - name: echo
    tenant: demo
    backend: { http: { url: "`+fn.srv.URL+`/fn" } }
    destinations: { on_success: [ `+hook.YAML()+` ] }
`, exportEnv(rcv, "60000")...)

	const caller = "00-5b8efff798038103d269b633813fc60c-eee19b7ec3c1b174-01"
	req, _ := http.NewRequest(http.MethodPost, p.URL("/v1/functions/echo/tasks"), strings.NewReader(`{"n": 1}`))
	req.Header.Set("Authorization", "Bearer demo-key")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", caller)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var task struct{ ID string }
	_ = json.NewDecoder(resp.Body).Decode(&task)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || task.ID == "" {
		t.Fatalf("submit: %s, id %q", resp.Status, task.ID)
	}
	ferrytest.WaitFor(t, within, "the webhook delivery", func() bool { return len(hook.Deliveries(task.ID)) > 0 })
	if n := rcv.Requests(); n != 0 {
		t.Fatalf("%d exports before shutdown with a one-minute batch delay; the test wants them from the flush", n)
	}
	p.Term() // flushes the spans

	all := rcv.WaitFor(t, within, "the task's spans", func(spans []otlptest.Span) bool {
		return len(otlptest.Named(spans, "ferry.deliver", "ferry.task.id", task.ID)) > 0
	})
	submit := one(t, "ferry.submit", otlptest.Named(all, "ferry.submit", "ferry.task.id", task.ID), all)
	attempt := one(t, "ferry.attempt", otlptest.Named(all, "ferry.attempt", "ferry.task.id", task.ID), all)
	backend := one(t, "ferry.backend.http", otlptest.Named(all, "ferry.backend.http", "", nil), all)
	deliver := one(t, "ferry.deliver", otlptest.Named(all, "ferry.deliver", "ferry.task.id", task.ID), all)

	if submit.TraceID != caller[3:35] || submit.ParentSpanID != caller[36:52] {
		t.Errorf("submit span trace %s parent %s; want the caller's %s", submit.TraceID, submit.ParentSpanID, caller)
	}
	childOf(t, attempt, submit)
	childOf(t, backend, attempt)
	childOf(t, deliver, submit)
	if s := submit.Resource["service.name"]; s != "ferry" {
		t.Errorf("service.name %v, want ferry", s)
	}
	checkAttrs(t, submit, map[string]any{"ferry.tenant": "demo", "ferry.function": "echo", "ferry.task.id": task.ID})
	checkAttrs(t, attempt, map[string]any{"ferry.tenant": "demo", "ferry.function": "echo", "ferry.task.id": task.ID, "ferry.attempt": 1})
	checkAttrs(t, backend, map[string]any{"http.request.method": "POST", "url.full": fn.srv.URL + "/fn", "http.response.status_code": 200})
	checkAttrs(t, deliver, map[string]any{"ferry.sink.kind": "webhook", "ferry.delivery.result": "delivered",
		"ferry.destination": "on_success[0]", "ferry.outcome.type": "ferry.task.succeeded", "ferry.delivery.attempt": 1})

	if tps := fn.traceParents(); len(tps) != 1 || tps[0] != backend.TraceParent() {
		t.Errorf("the function got traceparents %q, want the backend span's %q", tps, backend.TraceParent())
	}
	if got := hook.Deliveries(task.ID)[0].TraceParent; got != deliver.TraceParent() {
		t.Errorf("the webhook got traceparent %q, want the delivery span's %q", got, deliver.TraceParent())
	}
}
