package dispatcher

import (
	"net/http"
	"testing"
	"time"
)

// FuzzParseRetryAfter: any Retry-After a backend or receiver sends is a
// wait of 0 or more, never a panic, and an HTTP date is read as one.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, s := range []string{"", "0", "30", "-1", "1.5", " 30", "9223372036854775807", "99999999999",
		now.Add(time.Minute).Format(http.TimeFormat), "Fri, 31 Dec 1999 23:59:59 GMT", "garbage"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if d := ParseRetryAfter(v, now); d < 0 {
			t.Fatalf("ParseRetryAfter(%q) = %s, negative", v, d)
		}
	})
}

// FuzzTraceParent: a traceparent from outside (a message header, a task)
// is read as OpenTelemetry reads it; whatever it is, the child is a valid
// version 00 traceparent, in the same trace when the parent was valid.
func FuzzTraceParent(f *testing.F) {
	for _, s := range []string{"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tp string) {
		tid, _, ok := parseTraceParent(tp)
		child := childTraceParent(tp)
		ctid, _, cok := parseTraceParent(child)
		if !cok || len(child) != 55 || child[:3] != "00-" {
			t.Fatalf("childTraceParent(%q) = %q, not a valid traceparent", tp, child)
		}
		if ok && ctid != tid {
			t.Fatalf("childTraceParent(%q) = %q left the trace", tp, child)
		}
	})
}
