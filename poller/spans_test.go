package poller_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/wire"
)

// TestBatchSpan: with a recording tracer, a batch is one consumer span
// under the first message's traceparent, linked to the other message's,
// naming trigger, topic, partition, offsets and ids; its attempt is its
// child and the backend call the attempt's child (whose traceparent the
// backend gets); the on_failure deliveries are its children too.
func TestBatchSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	const (
		tp0 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		tp1 = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	)
	src := newMemSource(3, 1, 3, func(i int, m *poller.Message) {
		m.Scope, m.ID, m.Source = "kafka:orders/2", fmt.Sprintf("kafka:orders/2/%d", 40+i), "kafka://127.0.0.1:9092/orders"
		switch i {
		case 0:
			m.Headers[wire.HeaderTraceParent] = tp0
		case 1:
			m.Headers[wire.HeaderTraceParent] = tp1
		}
	})
	var mu sync.Mutex
	var sent string
	fail := dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		mu.Lock()
		sent = inv.TraceParent
		mu.Unlock()
		return nil, dispatcher.Permanent("http_400", fmt.Errorf("bad"))
	})
	r := startWith(t, src, fail, 1, func(c *dispatcher.Config) { c.Tracer = tp.Tracer("test") }, func(c *poller.Config) {
		c.Kind, c.BatchSize, c.BatchWindow = "kafka", 3, 5*time.Second
	})
	src.waitSettled(t, 3)
	r.stop()
	mu.Lock()
	defer mu.Unlock()

	byName := map[string][]tracetest.SpanStub{}
	for _, s := range exp.GetSpans() {
		byName[s.Name] = append(byName[s.Name], s)
	}
	batches, attempts, backends := byName[poller.SpanBatch], byName[dispatcher.SpanAttempt], byName[dispatcher.SpanBackendPrefix+"go"]
	if len(batches) != 1 || len(attempts) != 1 || len(backends) != 1 || len(byName[dispatcher.SpanDeliver]) != 3 {
		t.Fatalf("spans: %d batch, %d attempt, %d backend, %d deliver; want 1, 1, 1, 3", len(batches), len(attempts), len(backends), len(byName[dispatcher.SpanDeliver]))
	}
	b := batches[0]
	if b.SpanKind != trace.SpanKindConsumer || b.Parent.TraceID().String() != tp0[3:35] || b.Parent.SpanID().String() != tp0[36:52] {
		t.Errorf("batch span kind %v parent %v; want consumer under %s", b.SpanKind, b.Parent, tp0)
	}
	if len(b.Links) != 1 || b.Links[0].SpanContext.SpanID().String() != tp1[36:52] {
		t.Errorf("batch span links %v, want one to %s", b.Links, tp1)
	}
	want := map[attribute.Key]string{
		"ferry.trigger": "trig", "ferry.function": "f", "messaging.system": "kafka", "messaging.destination.name": "orders",
		"messaging.destination.partition.id": "2", "ferry.offset.first": "40", "ferry.offset.last": "42",
		"messaging.kafka.offset": "40", "messaging.batch.message_count": "3",
		"ferry.message.ids": `["kafka:orders/2/40","kafka:orders/2/41","kafka:orders/2/42"]`,
	}
	got := map[attribute.Key]string{}
	for _, kv := range b.Attributes {
		got[kv.Key] = kv.Value.String()
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("batch span %s = %q, want %q", k, got[k], v)
		}
	}
	a := attempts[0]
	if a.Parent.SpanID() != b.SpanContext.SpanID() || a.SpanKind != trace.SpanKindInternal {
		t.Errorf("attempt parent %s kind %v; want the batch span %s, internal", a.Parent.SpanID(), a.SpanKind, b.SpanContext.SpanID())
	}
	if be := backends[0]; be.Parent.SpanID() != a.SpanContext.SpanID() || sent[36:52] != be.SpanContext.SpanID().String() {
		t.Errorf("backend span parent %s (want the attempt %s); the backend got %q, want span %s",
			be.Parent.SpanID(), a.SpanContext.SpanID(), sent, be.SpanContext.SpanID())
	}
	for _, d := range byName[dispatcher.SpanDeliver] {
		if d.Parent.SpanID() != b.SpanContext.SpanID() {
			t.Errorf("delivery span parent %s, want the batch span %s", d.Parent.SpanID(), b.SpanContext.SpanID())
		}
	}
}

// TestNoBatchSpanWhenOff: with the propagation tracer the poller records
// nothing and the backend still gets a child of the message's trace.
func TestNoBatchSpanWhenOff(t *testing.T) {
	const tp0 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	src := newMemSource(1, 1, 1, func(_ int, m *poller.Message) { m.Headers[wire.HeaderTraceParent] = tp0 })
	got := make(chan string, 1)
	b := dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		got <- inv.TraceParent
		return &dispatcher.Result{}, nil
	})
	startWith(t, src, b, 1, func(c *dispatcher.Config) { c.Tracer = dispatcher.PropagationTracer() }, nil)
	src.waitSettled(t, 1)
	if tp := <-got; tp[3:35] != tp0[3:35] || tp[36:52] == tp0[36:52] {
		t.Errorf("backend traceparent %q, want a child of %q", tp, tp0)
	}
}
