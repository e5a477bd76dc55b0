package kafka

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/wire"
)

func TestMessage(t *testing.T) {
	base := wire.Outcome{
		Type: wire.TypeSucceeded, ID: "task-1", Tenant: "demo", Function: "echo",
		Status: "succeeded", Attempts: 1, Output: json.RawMessage(`{"ok":true}`),
		Source: "ferry://demo/echo", Hops: 3, Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name        string
		traceParent string
		wantHeaders []kafkago.Header
	}{
		{"WithTraceParent", tp, []kafkago.Header{
			{Key: "content-type", Value: []byte("application/json")},
			{Key: "ferry-hops", Value: []byte("3")},
			{Key: "ferry-id", Value: []byte("task-1")},
			{Key: "ferry-type", Value: []byte(wire.TypeSucceeded)},
			{Key: "traceparent", Value: []byte(tp)},
		}},
		{"WithoutTraceParent", "", []kafkago.Header{
			{Key: "content-type", Value: []byte("application/json")},
			{Key: "ferry-hops", Value: []byte("3")},
			{Key: "ferry-id", Value: []byte("task-1")},
			{Key: "ferry-type", Value: []byte(wire.TypeSucceeded)},
		}},
		{"TraceParentWithNewlineDropped", tp + "\r\nx: y", []kafkago.Header{
			{Key: "content-type", Value: []byte("application/json")},
			{Key: "ferry-hops", Value: []byte("3")},
			{Key: "ferry-id", Value: []byte("task-1")},
			{Key: "ferry-type", Value: []byte(wire.TypeSucceeded)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			o.TraceParent = tt.traceParent
			m, err := message("dlq", &o)
			if err != nil {
				t.Fatal(err)
			}
			want, err := sinks.Encode(&o)
			if err != nil {
				t.Fatal(err)
			}
			if m.Topic != "dlq" || string(m.Key) != "task-1" || string(m.Value) != string(want.Body) {
				t.Errorf("message = topic %q key %q value %s, want dlq, task-1, %s", m.Topic, m.Key, m.Value, want.Body)
			}
			if !reflect.DeepEqual(m.Headers, tt.wantHeaders) {
				t.Errorf("headers:\n got %s\nwant %s", fmtHeaders(m.Headers), fmtHeaders(tt.wantHeaders))
			}
		})
	}
}

func fmtHeaders(hs []kafkago.Header) string {
	var b strings.Builder
	for _, h := range hs {
		fmt.Fprintf(&b, "%s=%q ", h.Key, h.Value)
	}
	return b.String()
}

func TestMessageEncodeError(t *testing.T) {
	o := &wire.Outcome{ID: "bad", Output: json.RawMessage(`{not json`)}
	if _, err := message("t", o); err == nil || !strings.Contains(err.Error(), "encoding outcome bad") {
		t.Errorf("message with invalid Output: err = %v, want an encoding error", err)
	}
}

func TestRetryBeforeQueue(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"LeaderNotAvailable", kafkago.LeaderNotAvailable, true},
		{"UnknownTopicOrPartition", kafkago.UnknownTopicOrPartition, true},
		{"WrappedTemporary", fmt.Errorf("meta: %w", kafkago.NotLeaderForPartition), true},
		{"NotTemporary", kafkago.TopicAuthorizationFailed, false},
		{"WriteErrors", kafkago.WriteErrors{kafkago.LeaderNotAvailable}, false},
		{"Network", syscall.ECONNREFUSED, false},
		{"EOF", io.EOF, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryBeforeQueue(tt.err); got != tt.want {
				t.Errorf("retryBeforeQueue(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestUnwrapWriteErrors(t *testing.T) {
	if got := unwrapWriteErrors(kafkago.WriteErrors{nil, syscall.ECONNREFUSED}); !errors.Is(got, syscall.ECONNREFUSED) {
		t.Errorf("unwrapWriteErrors = %v, want ECONNREFUSED", got)
	}
	if got := unwrapWriteErrors(io.EOF); got != io.EOF {
		t.Errorf("unwrapWriteErrors(EOF) = %v", got)
	}
}
