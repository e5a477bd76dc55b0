package async_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/embedded"
)

// TestSubmitSpans: with a recording tracer, a submission is a ferry.submit
// span (under the caller's traceparent) naming tenant, function and task
// id, and the task carries its traceparent; each task of a batch starts
// its own trace with a ferry.submit span linked to the request's
// ferry.submit_batch span.
func TestSubmitSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	q, err := embedded.Open(t.TempDir(), embedded.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	api := async.NewAPI(async.APIConfig{
		Store: q, Auth: async.NewAuth(map[string][]string{"a": {"key-a"}}),
		Functions: func(tenant, fn string) bool { return fn == "f" }, Tracer: tp.Tracer("test"), Logger: quiet,
	})
	mux := http.NewServeMux()
	api.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	const caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	r := call(t, srv, http.MethodPost, "/v1/functions/f/tasks", "key-a", `{}`, map[string]string{"traceparent": caller})
	id, _ := r.body["id"].(string)
	task, err := q.Get(context.Background(), "a", id)
	if err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "ferry.submit" {
		t.Fatalf("spans %v, want one ferry.submit", spans)
	}
	s := spans[0]
	if s.Parent.TraceID().String() != caller[3:35] || s.Parent.SpanID().String() != caller[36:52] {
		t.Errorf("submit span's parent %v, want the caller's %s", s.Parent, caller)
	}
	if want := traceParent(s.SpanContext); task.TraceParent != want {
		t.Errorf("task traceparent %q, want the submit span's %q", task.TraceParent, want)
	}
	checkAttrs(t, s, map[attribute.Key]string{"ferry.tenant": "a", "ferry.function": "f", "ferry.task.id": id})

	exp.Reset()
	r = call(t, srv, http.MethodPost, "/v1/functions/f/tasks/batch", "key-a", `{"tasks": [{"payload": 1}, {"payload": 2}]}`, nil)
	items, _ := r.body["tasks"].([]any)
	if len(items) != 2 {
		t.Fatalf("batch answer %v", r.body)
	}
	var batch tracetest.SpanStub
	submits := map[string]tracetest.SpanStub{} // by task id
	for _, s := range exp.GetSpans() {
		switch s.Name {
		case "ferry.submit_batch":
			batch = s
		case "ferry.submit":
			for _, kv := range s.Attributes {
				if kv.Key == "ferry.task.id" {
					submits[kv.Value.AsString()] = s
				}
			}
		}
	}
	for _, it := range items {
		id := it.(map[string]any)["id"].(string)
		s, ok := submits[id]
		if !ok {
			t.Fatalf("no ferry.submit span for task %s", id)
		}
		task, err := q.Get(context.Background(), "a", id)
		if err != nil {
			t.Fatal(err)
		}
		if s.Parent.IsValid() || len(s.Links) != 1 || s.Links[0].SpanContext.SpanID() != batch.SpanContext.SpanID() {
			t.Errorf("task %s: submit span parent %v links %v; want a root linked to the batch span %s", id, s.Parent, s.Links, batch.SpanContext.SpanID())
		}
		if want := traceParent(s.SpanContext); task.TraceParent != want {
			t.Errorf("task %s traceparent %q, want its submit span's %q", id, task.TraceParent, want)
		}
		checkAttrs(t, s, map[attribute.Key]string{"ferry.tenant": "a", "ferry.function": "f"})
	}
}

func traceParent(sc trace.SpanContext) string {
	out := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), out)
	return out["traceparent"]
}

func checkAttrs(t *testing.T, s tracetest.SpanStub, want map[attribute.Key]string) {
	t.Helper()
	got := map[attribute.Key]string{}
	for _, kv := range s.Attributes {
		got[kv.Key] = kv.Value.String()
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %q, want %q", s.Name, k, got[k], v)
		}
	}
}
