// Package dispatcher turns async tasks and poller messages into invocations
// of a function's backend: it enforces tenant and function concurrency
// limits, leases tasks fairly, refuses trigger loops, bounds each attempt
// with a timeout, retries with exponential backoff and hands outcomes to the
// destinations.
package dispatcher

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Invocation is one attempt to run a function with a payload. A task and a
// poller message (or batch) become the same Invocation.
type Invocation struct {
	// ID identifies the event: the task id, or a message id such as
	// "kafka:orders/0/42". Sent as ce-id; stable across attempts.
	ID       string
	Tenant   string
	Function string
	// Source and Type are the CloudEvents source and type.
	Source string
	Type   string
	// Time is when the event was created (ce-time).
	Time        time.Time
	Payload     []byte
	ContentType string
	// Headers are message headers or properties carried to the backend.
	Headers map[string]string
	// Hops is the hop count the event arrived with; what the invocation
	// emits (the backend request, destination messages) carries Hops+1.
	Hops int
	// TraceParent is the W3C traceparent of the event, if any.
	TraceParent string
	// Attempt is the 1-based attempt number.
	Attempt int
	// Batch, when not nil, holds the events of a poller batch; the
	// backend sends them together (HTTP: application/cloudevents-batch+json)
	// and Payload is unused. The invocation's other fields describe the
	// batch as a whole (ID names the batch, Hops is the highest hop count).
	Batch []Event
}

// Event is one message of a batch invocation.
type Event struct {
	ID          string
	Source      string
	Type        string
	Time        time.Time
	Payload     []byte
	ContentType string
	// Key is the message key (sent as the CloudEvents partitionkey).
	Key     string
	Headers map[string]string
	// Hops is the hop count the message arrived with.
	Hops int
	// TraceParent is the message's W3C traceparent, if any (the loop
	// guard names its trace; the batch carries the invocation's).
	TraceParent string
}

// BatchID names a batch invocation by its first event and its size
// (ce-id of the batch, id of its outcome).
func BatchID(first string, n int) string { return "batch:" + first + "+" + strconv.Itoa(n) }

// OutHops is the hop count the invocation's outputs carry.
func (inv *Invocation) OutHops() int { return inv.Hops + 1 }

// Result is a successful backend answer.
type Result struct {
	// Output is the response body (HTTP) or stdout (exec).
	Output      []byte
	ContentType string
	// StatusCode is the HTTP status, when the backend speaks HTTP.
	StatusCode int
}

// Backend runs a function. It returns a Result on success, or an error that
// says whether a retry can help (see Permanent, RetryAfter, Classify).
type Backend interface {
	Invoke(ctx context.Context, inv *Invocation) (*Result, error)
}

// BackendFunc adapts a function to Backend, for library users and tests.
type BackendFunc func(ctx context.Context, inv *Invocation) (*Result, error)

// Invoke calls f.
func (f BackendFunc) Invoke(ctx context.Context, inv *Invocation) (*Result, error) {
	return f(ctx, inv)
}

// Middleware wraps a Backend with a cross-cutting step.
type Middleware func(Backend) Backend

// Chain wraps b with mws; the first middleware runs first (outermost), as in
// Watermill's router.
func Chain(b Backend, mws ...Middleware) Backend {
	for i := len(mws) - 1; i >= 0; i-- {
		b = mws[i](b)
	}
	return b
}

// MaxRetryAfter bounds the wait ParseRetryAfter returns: a larger
// delay-seconds (up to the overflow of time.Duration, which made a huge
// value negative) is read as this.
const MaxRetryAfter = 365 * 24 * time.Hour

// ParseRetryAfter parses an HTTP Retry-After value (seconds or an HTTP date)
// relative to now. It returns 0 when v is empty or malformed, and at most
// MaxRetryAfter.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case s < 0:
			return 0
		case s > int64(MaxRetryAfter/time.Second):
			return MaxRetryAfter
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), MaxRetryAfter)
	}
	return 0
}
