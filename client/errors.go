package client

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is an error answer of the Ferry API: its HTTP status and the body
// {"error": {"code", "message"}}. Check for it with errors.As:
//
//	var apiErr *client.Error
//	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound { ... }
//
// An answer that is not Ferry's JSON (a proxy's error page, say) becomes an
// Error with Code "http_<status>" and the start of the body as Message.
type Error struct {
	// Status is the HTTP status code. It is 0 for the error of one item of a
	// batch answer (the request itself was accepted).
	Status int
	// Code is the API's machine-readable code, e.g. "task_not_found",
	// "rate_limited", "conflict".
	Code string
	// Message is the API's human-readable explanation.
	Message string
	// RetryAfter is the wait the API asked for in a Retry-After header; 0
	// when it sent none.
	RetryAfter time.Duration
}

// Error implements error. It says whether a retry can help.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("ferry: ")
	if e.Status != 0 {
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteString(" ")
	}
	b.WriteString(e.Code)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Temporary() {
		if e.RetryAfter > 0 {
			fmt.Fprintf(&b, " (retrying after %s may help)", e.RetryAfter)
		} else {
			b.WriteString(" (retrying later may help)")
		}
	}
	return b.String()
}

// Temporary reports whether the same request may succeed later unchanged:
// the API was rate limited (429), overloaded or not ready (503), out of
// store space (507), or a gateway in front of it failed (502, 504). Every
// other error needs a change first (400, 401, 404, 409, 413).
func (e *Error) Temporary() bool {
	switch e.Status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable, http.StatusInsufficientStorage,
		http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	}
	return e.Status == 0 && (e.Code == "rate_limited" || e.Code == "quota_exceeded" ||
		e.Code == "unavailable" || e.Code == "store_full")
}

// IsNotFound reports whether err is the API's 404: an unknown function or
// task, or one of another tenant.
func IsNotFound(err error) bool { return statusIs(err, http.StatusNotFound) }

// IsConflict reports whether err is the API's 409: a task that cannot be
// cancelled or replayed in its state, or an idempotency key used for
// another function.
func IsConflict(err error) bool { return statusIs(err, http.StatusConflict) }

func statusIs(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// maxRetryAfter bounds what parseRetryAfter returns.
const maxRetryAfter = 365 * 24 * time.Hour

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date; 0 when absent or malformed, at most maxRetryAfter.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if n, err := strconv.ParseInt(h, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case n < 0:
			return 0
		case n > int64(maxRetryAfter/time.Second):
			// Beyond time.Duration a huge value wrapped to a negative wait.
			return maxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}
