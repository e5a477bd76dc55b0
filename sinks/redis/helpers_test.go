package redis_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/sinks/redis"
)

// opTimeout bounds each Redis call the tests make.
const opTimeout = 10 * time.Second

// traceParent is a valid W3C traceparent.
const traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// testLogger writes warnings and errors to the test log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// outcome builds a succeeded outcome with id, hop count 1 and a traceparent.
func outcome(id string) *sinks.Outcome {
	return &sinks.Outcome{
		Type: sinks.TypeSucceeded, ID: id, Tenant: "demo", Function: "echo",
		Status: "succeeded", Attempts: 1, Output: json.RawMessage(`{"id":` + fmt.Sprintf("%q", id) + `}`),
		Source: "ferry://demo/echo", Hops: 1, Time: time.Now().UTC(), TraceParent: traceParent,
	}
}

// deliverWithin delivers o, bounded by d, and fails t on error.
func deliverWithin(t testing.TB, s *redis.Sink, o *sinks.Outcome, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := s.Deliver(ctx, o); err != nil {
		t.Fatalf("Deliver %s: %v", o.ID, err)
	}
}
