package dispatcher_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/wire"
)

// recorder is an SDK tracer whose spans are kept in memory.
func recorder(t *testing.T) (trace.Tracer, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer("test"), exp
}

// waitSpans polls until n spans called name have ended.
func waitSpans(t *testing.T, exp *tracetest.InMemoryExporter, name string, n int) []tracetest.SpanStub {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []tracetest.SpanStub
		for _, s := range exp.GetSpans() {
			if s.Name == name {
				got = append(got, s)
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d %s spans ended, want %d", len(got), name, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func attrOf(s tracetest.SpanStub, k attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == k {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func traceParentOf(sc trace.SpanContext) string {
	out := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(trace.ContextWithSpanContext(context.Background(), sc), out)
	return out[wire.HeaderTraceParent]
}

// TestSpansOfATask: with a recording tracer, a task's attempts are
// consumer spans under its submit span, each with a client span for the
// backend call whose traceparent the backend receives; its outcome
// delivery is a producer span under the submit span too, and the
// destination receives the delivery span's traceparent.
func TestSpansOfATask(t *testing.T) {
	tracer, exp := recorder(t)
	var mu sync.Mutex
	var sent []string // traceparents the backend received
	backend := dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, inv.TraceParent)
		if len(sent) == 1 {
			return nil, dispatcher.Retryable("http_503", errors.New("unavailable"), 0)
		}
		return &dispatcher.Result{Output: []byte("ok"), StatusCode: 200}, nil
	})
	sink := &recordingSink{}
	b := setup(t, dispatcher.Config{
		Tracer: tracer, TenantConcurrency: map[string]int{"t": 1},
		Functions: []*dispatcher.Function{{
			Lane: lane("t", "f"), Backend: backend, MaxConcurrency: 1, Retry: fastRetry(3),
			OnSuccess: []dispatcher.Destination{{Name: "on_success[0]", Kind: "log", Sink: sink, Retry: fastRetry(1)}},
		}},
	}, dispatcher.TaskRunnerConfig{Workers: 2})

	_, submit := tracer.Start(context.Background(), "ferry.submit", trace.WithSpanKind(trace.SpanKindProducer))
	submit.End()
	now := time.Now()
	if _, _, err := b.q.Enqueue(context.Background(), &async.Task{
		ID: "task-traced", Tenant: "t", Function: "f", Payload: []byte("{}"), TraceParent: traceParentOf(submit.SpanContext()),
		CreatedAt: now, UpdatedAt: now, ReadyAt: now,
	}, 0); err != nil {
		t.Fatal(err)
	}
	if got := b.waitFinal(t, "t", "task-traced"); got.Status != async.StatusSucceeded {
		t.Fatalf("task %s", got.Status)
	}
	outs := sink.waitFor(t, "task-traced")

	mu.Lock()
	sent = append([]string(nil), sent...)
	mu.Unlock()
	attempts := waitSpans(t, exp, dispatcher.SpanAttempt, 2)
	backends := waitSpans(t, exp, dispatcher.SpanBackendPrefix+"go", 2)
	deliveries := waitSpans(t, exp, dispatcher.SpanDeliver, 1)
	sub := submit.SpanContext()
	for i, a := range attempts {
		if a.Parent.SpanID() != sub.SpanID() || a.SpanContext.TraceID() != sub.TraceID() || a.SpanKind != trace.SpanKindConsumer {
			t.Errorf("attempt %d: parent %s trace %s kind %v; want the submit span %s, consumer", i+1,
				a.Parent.SpanID(), a.SpanContext.TraceID(), a.SpanKind, sub.SpanID())
		}
		for k, want := range map[attribute.Key]any{
			dispatcher.AttrTenant: "t", dispatcher.AttrFunction: "f", dispatcher.AttrTaskID: "task-traced", dispatcher.AttrAttempt: int64(i + 1),
		} {
			if got := attrOf(a, k).AsInterface(); got != want {
				t.Errorf("attempt %d: %s = %v, want %v", i+1, k, got, want)
			}
		}
	}
	if got := attrOf(attempts[0], dispatcher.AttrErrorType).AsString(); got != "http_503" {
		t.Errorf("failed attempt: error.type %q, want http_503", got)
	}
	for i, bs := range backends {
		if bs.Parent.SpanID() != attempts[i].SpanContext.SpanID() || bs.SpanKind != trace.SpanKindClient {
			t.Errorf("backend span %d: parent %s kind %v; want attempt %s, client", i+1, bs.Parent.SpanID(), bs.SpanKind, attempts[i].SpanContext.SpanID())
		}
		if sent[i] != traceParentOf(bs.SpanContext) {
			t.Errorf("backend call %d got traceparent %q, want the backend span's %q", i+1, sent[i], traceParentOf(bs.SpanContext))
		}
	}
	if got := attrOf(backends[1], dispatcher.AttrHTTPStatus).AsInt64(); got != 200 {
		t.Errorf("backend span: http.response.status_code %d, want 200", got)
	}

	d := deliveries[0]
	if d.Parent.SpanID() != sub.SpanID() || d.SpanKind != trace.SpanKindProducer {
		t.Errorf("delivery span: parent %s kind %v; want the submit span %s, producer", d.Parent.SpanID(), d.SpanKind, sub.SpanID())
	}
	for k, want := range map[attribute.Key]string{
		dispatcher.AttrSinkKind: "log", dispatcher.AttrTaskID: "task-traced", dispatcher.AttrDeliveryResult: "delivered",
		dispatcher.AttrOutcomeType: wire.TypeSucceeded, dispatcher.AttrDestination: "on_success[0]",
	} {
		if got := attrOf(d, k).AsString(); got != want {
			t.Errorf("delivery span: %s = %q, want %q", k, got, want)
		}
	}
	if outs[0].TraceParent != traceParentOf(d.SpanContext) {
		t.Errorf("the destination got traceparent %q, want the delivery span's %q", outs[0].TraceParent, traceParentOf(d.SpanContext))
	}
}

// TestSpansOffKeepTraceContext: with PropagationTracer nothing records,
// the backend still gets a child traceparent in the task's trace, and the
// outcome carries the task's traceparent as it is.
func TestSpansOffKeepTraceContext(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	got := make(chan string, 1)
	sink := &recordingSink{}
	b := setup(t, dispatcher.Config{
		Tracer: dispatcher.PropagationTracer(), TenantConcurrency: map[string]int{"t": 1},
		Functions: []*dispatcher.Function{{
			Lane: lane("t", "f"), MaxConcurrency: 1, Retry: fastRetry(1),
			Backend: dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
				got <- inv.TraceParent
				return &dispatcher.Result{}, nil
			}),
			OnSuccess: []dispatcher.Destination{{Name: "on_success[0]", Kind: "log", Sink: sink, Retry: fastRetry(1)}},
		}},
	}, dispatcher.TaskRunnerConfig{Workers: 1})
	now := time.Now()
	if _, _, err := b.q.Enqueue(context.Background(), &async.Task{
		ID: "task-off", Tenant: "t", Function: "f", TraceParent: parent, CreatedAt: now, UpdatedAt: now, ReadyAt: now,
	}, 0); err != nil {
		t.Fatal(err)
	}
	tp := <-got
	if tp[3:35] != parent[3:35] || tp[36:52] == parent[36:52] {
		t.Errorf("backend traceparent %q, want a child of %q", tp, parent)
	}
	if o := sink.waitFor(t, "task-off")[0]; o.TraceParent != parent {
		t.Errorf("outcome traceparent %q, want the task's %q", o.TraceParent, parent)
	}
	if dispatcher.Recording(dispatcher.PropagationTracer()) || dispatcher.Recording(nil) {
		t.Error("Recording(PropagationTracer or nil) = true")
	}
}
