package dispatcher

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// Span names and attributes Ferry records while a span exporter is
// configured (README, "Traces", lists them). With PropagationTracer none
// of this runs: only traceparents are made.
const (
	// SpanAttempt is one attempt of a task or a trigger's message or batch.
	SpanAttempt = "ferry.attempt"
	// SpanBackendPrefix + the backend's kind ("http", "exec", "go") is
	// the backend call of an attempt; its traceparent goes to the backend.
	SpanBackendPrefix = "ferry.backend."
	// SpanDeliver is one delivery attempt of an outcome to a destination.
	SpanDeliver = "ferry.deliver"

	AttrTenant          = attribute.Key("ferry.tenant")
	AttrFunction        = attribute.Key("ferry.function")
	AttrTaskID          = attribute.Key("ferry.task.id")
	AttrMessageID       = attribute.Key("ferry.message.id")
	AttrTrigger         = attribute.Key("ferry.trigger")
	AttrAttempt         = attribute.Key("ferry.attempt")
	AttrHops            = attribute.Key("ferry.hops")
	AttrBatchCount      = attribute.Key("messaging.batch.message_count")
	AttrErrorType       = attribute.Key("error.type")
	AttrSinkKind        = attribute.Key("ferry.sink.kind")
	AttrDestination     = attribute.Key("ferry.destination")
	AttrOutcomeType     = attribute.Key("ferry.outcome.type")
	AttrDeliveryAttempt = attribute.Key("ferry.delivery.attempt")
	AttrDeliveryResult  = attribute.Key("ferry.delivery.result")
	AttrHTTPStatus      = attribute.Key("http.response.status_code")
)

// Describer is implemented by backends that describe themselves to
// traces: BackendKind names the backend span (SpanBackendPrefix + kind)
// and SpanAttributes are set on each of them (the HTTP backend: method,
// URL and server). A backend without it is of kind "go".
type Describer interface {
	BackendKind() string
	SpanAttributes() []attribute.KeyValue
}

// Recording reports whether tracer records spans: false for nil and for
// PropagationTracer, whose spans only carry trace context.
func Recording(tracer trace.Tracer) bool {
	if tracer == nil {
		return false
	}
	_, prop := tracer.(propagationTracer)
	return !prop
}

// Tracer returns the tracer the dispatcher records spans with, or nil when
// nothing records (no tracer, or PropagationTracer): entry points start
// their own spans (a trigger's batch) only when it is not nil.
func (d *Dispatcher) Tracer() trace.Tracer {
	if !d.recording {
		return nil
	}
	return d.tracer
}

// parentContext is the context a span of an invocation or outcome starts
// in: ctx when it carries a span (a trigger's batch span, the attempt
// span), else ctx with the remote parent named by traceParent, if valid.
func parentContext(ctx context.Context, traceParent string) context.Context {
	if traceParent == "" || trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	return propagation.TraceContext{}.Extract(ctx, propagation.MapCarrier{wire.HeaderTraceParent: traceParent})
}

// traceParentOf returns the traceparent of ctx's span, or keep when it has
// none (a tracer that makes no span context).
func traceParentOf(ctx context.Context, keep string) string {
	out := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, out)
	if tp := out[wire.HeaderTraceParent]; tp != "" {
		return tp
	}
	return keep
}

// attemptAttributes describe an attempt of inv.
func attemptAttributes(inv *Invocation) []attribute.KeyValue {
	id := AttrMessageID
	if inv.Type == TypeTask {
		id = AttrTaskID
	}
	attrs := []attribute.KeyValue{
		AttrTenant.String(inv.Tenant), AttrFunction.String(inv.Function), id.String(inv.ID),
		AttrAttempt.Int(inv.Attempt), AttrHops.Int(inv.Hops),
	}
	if inv.Batch != nil {
		attrs = append(attrs, AttrBatchCount.Int(len(inv.Batch)))
	}
	return attrs
}

// endWith records err (classified) on span and ends it; with httpStatus,
// the HTTP status of res or of the error too, when there is one.
func endWith(span trace.Span, res *Result, err error, httpStatus bool) {
	status := 0
	if res != nil {
		status = res.StatusCode
	}
	if err != nil {
		c := Classify(err)
		status = c.StatusCode
		span.SetAttributes(AttrErrorType.String(c.Code))
		span.SetStatus(codes.Error, c.Code)
	}
	if httpStatus && status > 0 {
		span.SetAttributes(AttrHTTPStatus.Int(status))
	}
	span.End()
}

// TraceBackend starts the backend span of each attempt: a client span
// named SpanBackendPrefix + the backend's kind (see Describer), a child of
// the attempt span in ctx (or of the invocation's traceparent), whose
// traceparent is the one the backend receives. It is the innermost
// middleware (Dispatcher.New puts it there) and does nothing unless the
// tracer records.
func TraceBackend(tracer trace.Tracer, b Backend) Middleware {
	return func(next Backend) Backend {
		if !Recording(tracer) {
			return next
		}
		kind, static := "go", []attribute.KeyValue(nil)
		if d, ok := b.(Describer); ok {
			kind, static = d.BackendKind(), d.SpanAttributes()
		}
		name := SpanBackendPrefix + kind
		return BackendFunc(func(ctx context.Context, inv *Invocation) (*Result, error) {
			ctx, span := tracer.Start(parentContext(ctx, inv.TraceParent), name,
				trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(static...))
			c := *inv
			c.TraceParent = traceParentOf(ctx, inv.TraceParent)
			res, err := next.Invoke(ctx, &c)
			endWith(span, res, err, true)
			return res, err
		})
	}
}

// startDelivery starts the span of one delivery attempt of o to dest: a
// producer span, a child of ctx's span (a trigger's batch) or else of the
// outcome's traceparent (a task's submit span). It returns the outcome to
// send, whose traceparent is the delivery span's.
func (d *Dispatcher) startDelivery(ctx context.Context, dest *Destination, o *wire.Outcome, attempt int) (context.Context, *wire.Outcome, trace.Span) {
	id := AttrTaskID
	attrs := []attribute.KeyValue{
		AttrSinkKind.String(dest.Kind), AttrDestination.String(dest.Name),
		AttrTenant.String(o.Tenant), AttrFunction.String(o.Function),
		AttrOutcomeType.String(o.Type), AttrDeliveryAttempt.Int(attempt),
	}
	if rc := o.RequestContext; rc != nil && rc.Trigger != "" {
		id = AttrMessageID
		attrs = append(attrs, AttrTrigger.String(rc.Trigger))
	}
	attrs = append(attrs, id.String(o.ID))
	ctx, span := d.tracer.Start(parentContext(ctx, o.TraceParent), SpanDeliver,
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	c := *o
	c.TraceParent = traceParentOf(ctx, o.TraceParent)
	return ctx, &c, span
}

// endDelivery records a delivery attempt's result on its span and ends it.
func endDelivery(span trace.Span, r delivered, ok bool) {
	result := "interrupted" // a shutdown cut it short; it does not count
	if ok {
		switch r.State {
		case async.DeliveryDelivered:
			result = "delivered"
		case async.DeliveryPending:
			result = "retried"
		default:
			result = "failed"
		}
	}
	span.SetAttributes(AttrDeliveryResult.String(result))
	if r.Err != nil { // the code only: an error's text may quote a URL
		code := Classify(r.Err).Code
		span.SetAttributes(AttrErrorType.String(code))
		span.SetStatus(codes.Error, code)
	}
	span.End()
}
