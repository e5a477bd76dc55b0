// Package sinks delivers invocation outcomes to destinations: signed
// webhooks, the log, and (later) message brokers. Every sink sends the same
// Outcome JSON; a failed delivery is returned as an error so that the caller
// retries it, counts it and records it, never dropping it silently.
package sinks

import (
	"context"
	"encoding/json"
	"time"
)

// Outcome types.
const (
	TypeSucceeded = "ferry.task.succeeded"
	TypeFailed    = "ferry.task.failed"
)

// OutcomeError is the error of a failed outcome.
type OutcomeError struct {
	Code       string `json:"code"`
	Message    string `json:"message"`
	HTTPStatus int    `json:"http_status,omitempty"`
}

// Outcome is the pinned destination record of one finished invocation.
type Outcome struct {
	Type     string `json:"type"`
	ID       string `json:"id"`
	Tenant   string `json:"tenant"`
	Function string `json:"function"`
	Status   string `json:"status"`
	Attempts int    `json:"attempts"`
	// Output is the backend's output, as JSON when it is JSON, else a JSON
	// string (set on success).
	Output json.RawMessage `json:"output,omitempty"`
	// Error is set on failure.
	Error *OutcomeError `json:"error,omitempty"`
	// Source is the event source (the CloudEvents source of the invocation).
	Source string `json:"source"`
	// Hops is the hop count the outcome message carries (invocation hops+1).
	Hops int       `json:"hops"`
	Time time.Time `json:"time"`
	// RequestContext describes the invocation that led to the outcome, as
	// a cloud platform's destination record does.
	RequestContext *RequestContext `json:"request_context,omitempty"`
	// RequestPayload is the payload of the failed invocation (failure
	// records only, so that a dead-letter consumer can process it again),
	// as JSON when it is JSON, else a JSON string.
	RequestPayload json.RawMessage `json:"request_payload,omitempty"`
	// TraceParent travels as a header or property, not in the body.
	TraceParent string `json:"-"`
}

// RequestContext is the request side of an outcome record.
type RequestContext struct {
	// RequestID is the task id or the message id (ce-id).
	RequestID string `json:"request_id"`
	// Condition is "success", or the failure code (retries_exhausted,
	// rejected, max_age_exceeded, loop_detected, ...).
	Condition string `json:"condition"`
	// Attempts counts the backend attempts made.
	Attempts int `json:"attempts"`
	// LastStatus is the HTTP status of the last attempt, when the backend
	// speaks HTTP.
	LastStatus int `json:"last_status,omitempty"`
	// LastError is the error of the last failed attempt, if any (also on a
	// success after retries).
	LastError *OutcomeError `json:"last_error,omitempty"`
	// Trigger names the trigger of a poller invocation.
	Trigger string `json:"trigger,omitempty"`
	// CreatedAt is when the task was accepted or the message produced.
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Sink delivers an outcome to one destination. Deliver returns nil only
// once the destination has accepted the outcome; an error means the caller
// should retry it on the destination's schedule.
type Sink interface {
	Deliver(ctx context.Context, o *Outcome) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, o *Outcome) error

// Deliver calls f.
func (f SinkFunc) Deliver(ctx context.Context, o *Outcome) error { return f(ctx, o) }
