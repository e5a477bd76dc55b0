package wire

import (
	"encoding/json"
	"time"
)

// Outcome types.
const (
	TypeSucceeded = "ferry.task.succeeded"
	TypeFailed    = "ferry.task.failed"
)

// ConditionSuccess is the RequestContext.Condition of a success.
const ConditionSuccess = "success"

// OutcomeContentType is the content type of every outcome body.
const OutcomeContentType = "application/json"

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
	// Condition is ConditionSuccess, or the failure code
	// (retries_exhausted, rejected, max_age_exceeded, loop_detected, ...).
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

// OutputJSON renders a backend's output (or a payload) for the API and the
// destinations: the body itself when it is valid JSON, else the body as a
// JSON string. An empty body renders as nil.
func OutputJSON(body []byte) json.RawMessage {
	if len(body) == 0 {
		return nil
	}
	if json.Valid(body) {
		return json.RawMessage(body)
	}
	b, _ := json.Marshal(string(body))
	return b
}
