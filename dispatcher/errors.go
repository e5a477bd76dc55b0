package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Error is an invocation failure that says what to do next: retry (after a
// delay, if RetryAfter is set) or give up. Backends return it; other errors
// are treated as retryable.
type Error struct {
	// Code is a short machine-readable cause, e.g. "http_503", "timeout",
	// "exit_status", "connection", "loop_detected".
	Code string
	// StatusCode is the backend's HTTP status, if any.
	StatusCode int
	// RetryAfter is the delay the backend asked for (capped by the retry
	// policy's max_interval); 0 if none.
	RetryAfter time.Duration
	// Err is the underlying error.
	Err error

	permanent bool
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err == nil {
		return e.Code
	}
	return e.Code + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether retrying cannot help.
func (e *Error) Permanent() bool { return e.permanent }

// Permanent marks err as not retryable, keeping its code.
func Permanent(code string, err error) error {
	return &Error{Code: code, Err: err, permanent: true}
}

// Retryable marks err as retryable with a code; retryAfter (0: none) asks
// for a minimum delay before the next attempt.
func Retryable(code string, err error, retryAfter time.Duration) error {
	return &Error{Code: code, Err: err, RetryAfter: retryAfter}
}

// ErrLoopDetected is the cause of an invocation refused by the loop guard.
var ErrLoopDetected = errors.New("loop detected")

// Classified is what the dispatcher knows of a failed attempt.
type Classified struct {
	Code       string
	Message    string
	StatusCode int
	Permanent  bool
	RetryAfter time.Duration
	// Local is the kind of a failure of Ferry's own resources (see
	// CodeLocalResource), "" for a failure of the function: such an
	// attempt is not spent.
	Local string
}

// Classify reads an invocation error: a failure of Ferry's own resources
// (LocalKind) is a retryable CodeLocalResource with its kind in Local; an
// *Error anywhere in the chain gives its code and retryability; a context
// deadline is a retryable "timeout"; a panic recovered by Recover is
// retryable; anything else is a retryable "error".
func Classify(err error) Classified {
	if kind := LocalKind(err); kind != "" {
		return Classified{Code: CodeLocalResource, Message: err.Error(), Local: kind}
	}
	var e *Error
	if errors.As(err, &e) {
		return Classified{Code: e.Code, Message: err.Error(), StatusCode: e.StatusCode, Permanent: e.permanent, RetryAfter: e.RetryAfter}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return Classified{Code: "timeout", Message: err.Error()}
	}
	return Classified{Code: "error", Message: err.Error()}
}

// PanicError is a panic in a backend, recovered at the execution boundary.
type PanicError struct {
	Value any
	// Where is the file:line of the panic.
	Where string
}

// Error implements error.
func (p *PanicError) Error() string {
	return fmt.Sprintf("backend panicked at %s: %v", p.Where, p.Value)
}
