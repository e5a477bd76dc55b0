// Package wire is the vocabulary every part of Ferry speaks: the names it
// reads and writes on the wire (the hop count, the trace context, the
// outcome id and type), the hop count's parsing, the error codes of failed
// invocations, the Lane that names one tenant's function, and the Outcome
// record sent to destinations. It imports nothing of Ferry: the async API,
// the dispatcher, the pollers and the sinks import it and never each other
// for these names.
package wire

import (
	"fmt"
	"strconv"
)

// Names Ferry reads and writes as an HTTP header, a message header or
// property, or a Redis stream field. They are lower-case, as brokers often
// normalise names; HTTP headers are matched without regard to case.
const (
	// HeaderHops carries the hop count: read on every task and message
	// Ferry takes in (missing: 0), and set to the invocation's hop count + 1
	// on everything it emits (the backend request, destination messages).
	HeaderHops = "ferry-hops"
	// HeaderTraceParent carries the W3C trace context.
	HeaderTraceParent = "traceparent"
	// HeaderID carries an outcome's id (the task or message id), so that
	// consumers can drop duplicates of an at-least-once delivery.
	HeaderID = "ferry-id"
	// HeaderType carries an outcome's type (TypeSucceeded / TypeFailed).
	HeaderType = "ferry-type"
	// ExtensionHops is the CloudEvents extension carrying the hop count.
	ExtensionHops = "ferryhops"
	// EnvHops is the environment variable carrying the hop count to a local
	// process backend.
	EnvHops = "FERRY_HOPS"
)

// MaxHopsAccepted bounds the hop counts accepted from outside.
const MaxHopsAccepted = 1 << 20

// ParseHops parses a hop count as carried by HeaderHops. An empty value is
// 0 hops; anything but an integer in [0, MaxHopsAccepted] is an error.
func ParseHops(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > MaxHopsAccepted {
		return 0, fmt.Errorf("%s %q must be a non-negative integer", HeaderHops, v)
	}
	return n, nil
}

// Lane names the tasks and messages of one function of one tenant. Fair
// leasing visits tenants round-robin and, within a tenant, its lanes
// round-robin; limits are enforced per tenant and per lane.
type Lane struct {
	Tenant   string
	Function string
}

// String returns "tenant/function".
func (l Lane) String() string { return l.Tenant + "/" + l.Function }

// Error codes of failed invocations (a task's error code, an outcome's
// error code and request_context.condition).
const (
	CodeLoopDetected     = "loop_detected"      // hop or trace count reached loop_guard.max_hops
	CodeRejected         = "rejected"           // the backend answered with a permanent failure (4xx other than 408/429)
	CodeRetriesExhausted = "retries_exhausted"  // retryable failures until retry.max_attempts
	CodeMaxAgeExceeded   = "max_age_exceeded"   // the next retry would start after retry.max_age
	CodeFunctionNotFound = "function_not_found" // the function left the config while the task was queued
	// CodeBatchItemFailure is the attempt error of a batch item the
	// function named as failed in its batchItemFailures report.
	CodeBatchItemFailure = "batch_item_failure"
)
