package dispatcher_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/wire"
)

// BenchmarkAttempt measures the path every attempt takes through the
// dispatcher (slot, loop guard, the standard middleware and a backend that
// does nothing) with the tracer Ferry runs when no exporter is configured:
// what tracing costs when it is off.
func BenchmarkAttempt(b *testing.B) { benchAttempt(b, dispatcher.PropagationTracer()) }

// BenchmarkAttemptRecording is BenchmarkAttempt with an SDK tracer that
// records every span (attempt and backend call) into a batch processor
// whose exporter drops them: what tracing costs when it is on.
func BenchmarkAttemptRecording(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	benchAttempt(b, tp.Tracer("bench"))
}

func benchAttempt(b *testing.B, tracer trace.Tracer) {
	lane := wire.Lane{Tenant: "t", Function: "f"}
	fn := &dispatcher.Function{
		Lane: lane, MaxConcurrency: 1, Retry: dispatcher.RetryPolicy{MaxAttempts: 1},
		Backend: dispatcher.BackendFunc(func(context.Context, *dispatcher.Invocation) (*dispatcher.Result, error) {
			return &dispatcher.Result{}, nil
		}),
	}
	d, err := dispatcher.New(dispatcher.Config{
		Functions: []*dispatcher.Function{fn}, TenantConcurrency: map[string]int{"t": 1},
		MaxHops: 16, Tracer: tracer, Logger: quiet,
	})
	if err != nil {
		b.Fatal(err)
	}
	fn = d.Function(lane)
	inv := &dispatcher.Invocation{
		ID: "id", Tenant: "t", Function: "f", Attempt: 1, Payload: []byte("{}"),
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		slot, ok := d.TryAcquire(fn)
		if !ok {
			b.Fatal("no slot")
		}
		if a := d.Attempt(ctx, slot, inv, nil); a.Err != nil {
			b.Fatal(a.Err)
		}
	}
}
