package dispatcher

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// PropagationTracer returns a tracer that records nothing but keeps trace
// context flowing: each span gets a new span id in its parent's trace (a
// new, sampled trace when there is no parent) and keeps the parent's flags
// and tracestate, so the traceparent Ferry sends to backends and
// destinations is the same as with a recording SDK tracer. It is what Ferry
// runs with while no span exporter is configured: recording spans nobody
// exports cost a tenth of a trigger's CPU at batch 1.
func PropagationTracer() trace.Tracer { return propagationTracer{} }

type propagationTracer struct{ embedded.Tracer }

// Start implements trace.Tracer.
func (propagationTracer) Start(ctx context.Context, _ string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.SpanContextConfig{TraceFlags: trace.FlagsSampled}
	parent := trace.SpanContextFromContext(ctx)
	if len(opts) > 0 {
		if sc := trace.NewSpanStartConfig(opts...); sc.NewRoot() {
			parent = trace.SpanContext{}
		}
	}
	if parent.HasTraceID() {
		cfg.TraceID, cfg.TraceFlags, cfg.TraceState = parent.TraceID(), parent.TraceFlags(), parent.TraceState()
	}
	fillIDs(&cfg.TraceID, &cfg.SpanID)
	ctx = trace.ContextWithSpanContext(ctx, trace.NewSpanContext(cfg))
	return ctx, trace.SpanFromContext(ctx)
}

// fillIDs gives a zero trace id and the (zero) span id random values.
func fillIDs(traceID *trace.TraceID, spanID *trace.SpanID) {
	for !traceID.IsValid() {
		binary.BigEndian.PutUint64(traceID[:8], rand.Uint64())
		binary.BigEndian.PutUint64(traceID[8:], rand.Uint64())
	}
	for !spanID.IsValid() {
		binary.BigEndian.PutUint64(spanID[:], rand.Uint64())
	}
}

// ChildTraceParent is childTraceParent: callers that hold a tracer and only
// need the traceparent (the API's submit) ask for it without a span.
func (propagationTracer) ChildTraceParent(parent string) string { return childTraceParent(parent) }

// childTraceParent returns the traceparent of a new span under parent, as
// PropagationTracer would make it: parent's trace id and flags with a new
// span id, or a new sampled trace when parent is not a valid version 00
// traceparent. (Tracestate is not carried: it is a separate header.)
func childTraceParent(parent string) string {
	var traceID trace.TraceID
	flags := "01"
	if tid, fl, ok := parseTraceParent(parent); ok {
		traceID, flags = tid, fl
	}
	var spanID trace.SpanID
	fillIDs(&traceID, &spanID)
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	b = hex.AppendEncode(b, traceID[:])
	b = append(b, '-')
	b = hex.AppendEncode(b, spanID[:])
	b = append(b, '-')
	b = append(b, flags...)
	return string(b)
}

// parseTraceParent reads a traceparent as OpenTelemetry's propagator does:
// version 00 exactly 55 characters, a later version at least that (what
// follows after a '-' is ignored), lower-case hex, neither id all zeros;
// the flags are kept as they are.
func parseTraceParent(tp string) (trace.TraceID, string, bool) {
	var tid trace.TraceID
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || !isLowerHex(tp[:2]) || tp[:2] == "ff" ||
		(tp[:2] == "00" && len(tp) != 55) || (len(tp) > 55 && tp[55] != '-') {
		return tid, "", false
	}
	if !isLowerHex(tp[3:35]) || !isLowerHex(tp[36:52]) || !isLowerHex(tp[53:55]) {
		return tid, "", false
	}
	_, _ = hex.Decode(tid[:], []byte(tp[3:35]))
	if !tid.IsValid() || tp[36:52] == "0000000000000000" {
		return trace.TraceID{}, "", false
	}
	return tid, tp[53:55], true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
