package dispatcher

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Standard returns the middleware every function's backend runs behind, in
// order (the first runs first): Recover turns a panic into an error,
// metrics observe every attempt, Trace starts the attempt's span (its
// traceparent goes to the backend), and Timeout bounds the attempt.
// Dispatcher.New adds TraceBackend innermost, for the backend call's own
// span when spans are recorded.
//
// The whole path of one attempt (Dispatcher.Attempt), the same for a task
// and a message, is: a concurrency slot and a rate token, taken before the
// work is pulled (Slot); the loop guard, which refuses over-deep chains and
// trace loops before anything runs (per event of a batch); this
// middleware and the backend; the adaptive limit's feedback; the result
// classified (Classify) and recorded by the entry point while the slot is
// held; then the retry decided on it (RetryPolicy) and the outcome sent to
// the destinations, outside the slot.
func Standard(m *Metrics, tracer trace.Tracer, timeout time.Duration) []Middleware {
	return []Middleware{Recover(), m.Observe(), Trace(tracer), Timeout(timeout)}
}

// Trace starts a span per attempt (SpanAttempt), a child of the span in
// ctx (a trigger's batch span) or else of the invocation's traceparent (a
// task's submit span; a new trace when it has none), and sends the span's
// traceparent to the backend, so what the function forwards stays in the
// trace. The span is a consumer span for a task (its parent is the
// submission's producer span) and an internal one for a trigger (its
// parent is the batch's consumer span). A nil tracer leaves the invocation
// as it is; PropagationTracer only makes the new traceparent.
func Trace(tracer trace.Tracer) Middleware {
	return func(next Backend) Backend {
		if tracer == nil {
			return next
		}
		if _, ok := tracer.(propagationTracer); ok {
			// Nothing records: only the traceparent moves on, made
			// without the propagator's maps and contexts.
			return BackendFunc(func(ctx context.Context, inv *Invocation) (*Result, error) {
				c := *inv
				c.TraceParent = childTraceParent(inv.TraceParent)
				return next.Invoke(ctx, &c)
			})
		}
		return BackendFunc(func(ctx context.Context, inv *Invocation) (*Result, error) {
			kind := trace.SpanKindInternal
			if inv.Type == TypeTask {
				kind = trace.SpanKindConsumer
			}
			ctx, span := tracer.Start(parentContext(ctx, inv.TraceParent), SpanAttempt,
				trace.WithSpanKind(kind), trace.WithAttributes(attemptAttributes(inv)...))
			c := *inv
			c.TraceParent = traceParentOf(ctx, inv.TraceParent)
			res, err := next.Invoke(ctx, &c)
			endWith(span, res, err, false)
			return res, err
		})
	}
}

// Timeout bounds each attempt (d <= 0: no bound).
func Timeout(d time.Duration) Middleware {
	return func(next Backend) Backend {
		if d <= 0 {
			return next
		}
		return BackendFunc(func(ctx context.Context, inv *Invocation) (*Result, error) {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next.Invoke(ctx, inv)
		})
	}
}

// Recover turns a panic in the backend into a retryable *PanicError naming
// the file and line of the panic.
func Recover() Middleware {
	return func(next Backend) Backend {
		return BackendFunc(func(ctx context.Context, inv *Invocation) (res *Result, err error) {
			defer func() {
				if v := recover(); v != nil {
					res, err = nil, Retryable("panic", &PanicError{Value: v, Where: panicSite()}, 0)
				}
			}()
			return next.Invoke(ctx, inv)
		})
	}
}

// panicSite returns file:line of the frame that panicked: the first frame
// below runtime.gopanic that is not in the runtime.
func panicSite() string {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") {
			return fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		if !more {
			return "unknown"
		}
	}
}
