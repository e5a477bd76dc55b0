package dispatcher

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

func TestPropagationTracer(t *testing.T) {
	prop := propagation.TraceContext{}
	tests := []struct {
		name   string
		parent string // incoming traceparent; empty: none
		flags  trace.TraceFlags
	}{
		{name: "new trace is sampled", flags: trace.FlagsSampled},
		{name: "sampled parent", parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", flags: trace.FlagsSampled},
		{name: "unsampled parent keeps its flag", parent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", flags: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.parent != "" {
				ctx = prop.Extract(ctx, propagation.MapCarrier{"traceparent": tt.parent})
			}
			parent := trace.SpanContextFromContext(ctx)
			seen := map[trace.SpanID]bool{}
			var traces []trace.TraceID
			for range 3 {
				sctx, span := PropagationTracer().Start(ctx, "x")
				sc := span.SpanContext()
				if !sc.IsValid() || span.IsRecording() {
					t.Fatalf("span context %v valid=%v recording=%v; want valid, not recording", sc, sc.IsValid(), span.IsRecording())
				}
				if !trace.SpanContextFromContext(sctx).Equal(sc) {
					t.Fatal("the returned context does not carry the span")
				}
				if seen[sc.SpanID()] || sc.SpanID() == parent.SpanID() {
					t.Fatalf("span id %s repeated", sc.SpanID())
				}
				seen[sc.SpanID()] = true
				if sc.TraceFlags() != tt.flags {
					t.Errorf("flags %v, want %v", sc.TraceFlags(), tt.flags)
				}
				traces = append(traces, sc.TraceID())
				out := propagation.MapCarrier{}
				prop.Inject(sctx, out)
				if out["traceparent"] == "" {
					t.Fatal("no traceparent injected")
				}
			}
			for i, id := range traces {
				switch {
				case parent.IsValid() && id != parent.TraceID():
					t.Errorf("trace id %s, want the parent's %s", id, parent.TraceID())
				case !parent.IsValid() && i > 0 && id == traces[i-1]:
					t.Errorf("two new traces share trace id %s", id)
				}
			}
		})
	}
}

// TestPropagationTracerNewRoot: WithNewRoot starts a new trace whatever the
// parent, as an SDK tracer does.
func TestPropagationTracerNewRoot(t *testing.T) {
	ctx := propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
	parent := trace.SpanContextFromContext(ctx)
	_, span := PropagationTracer().Start(ctx, "x", trace.WithNewRoot())
	if sc := span.SpanContext(); !sc.IsValid() || sc.TraceID() == parent.TraceID() {
		t.Fatalf("new root span %v in the parent's trace %s", sc, parent.TraceID())
	}
}

// TestChildTraceParent: the fast path of Trace with the propagation tracer
// gives what the OpenTelemetry propagator and PropagationTracer give: the
// same trace id and sampled flag, a new span id; a new sampled trace for
// what the propagator refuses.
func TestChildTraceParent(t *testing.T) {
	prop := propagation.TraceContext{}
	for _, parent := range []string{
		"",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-later",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
		"junk",
	} {
		in := prop.Extract(context.Background(), propagation.MapCarrier{"traceparent": parent})
		ctx, _ := PropagationTracer().Start(in, "x")
		want := trace.SpanContextFromContext(ctx)

		if tid := traceID(parent); tid != trace.SpanContextFromContext(in).TraceID() {
			t.Errorf("%q: traceID %s, want the propagator's %s", parent, tid, trace.SpanContextFromContext(in).TraceID())
		}
		got := childTraceParent(parent)
		sc := trace.SpanContextFromContext(prop.Extract(context.Background(), propagation.MapCarrier{"traceparent": got}))
		switch {
		case !sc.IsValid():
			t.Errorf("%q: child %q is not a valid traceparent", parent, got)
		case trace.SpanContextFromContext(in).IsValid() && sc.TraceID() != want.TraceID():
			t.Errorf("%q: child trace %s, want %s", parent, sc.TraceID(), want.TraceID())
		case sc.TraceFlags() != want.TraceFlags():
			t.Errorf("%q: child flags %v, want %v", parent, sc.TraceFlags(), want.TraceFlags())
		case sc.SpanID() == trace.SpanContextFromContext(in).SpanID():
			t.Errorf("%q: child keeps the parent's span id", parent)
		}
	}
}
