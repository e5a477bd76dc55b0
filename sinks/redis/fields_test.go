package redis

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/wire"
)

func TestFields(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	base := wire.Outcome{Type: wire.TypeFailed, ID: "task-9", Status: "failed", Hops: 2,
		Error: &wire.OutcomeError{Code: "rejected", Message: "no"}}
	body := func(o wire.Outcome) []byte {
		m, err := sinks.Encode(&o)
		if err != nil {
			t.Fatal(err)
		}
		return m.Body
	}
	tests := []struct {
		name        string
		traceParent string
		want        func(body []byte) []any
	}{
		{"WithTraceParent", tp, func(b []byte) []any {
			return []any{"data", b, "content-type", "application/json", "ferry-hops", "2",
				"traceparent", tp, "ferry-id", "task-9", "ferry-type", wire.TypeFailed}
		}},
		{"WithoutTraceParent", "", func(b []byte) []any {
			return []any{"data", b, "content-type", "application/json", "ferry-hops", "2",
				"ferry-id", "task-9", "ferry-type", wire.TypeFailed}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			o.TraceParent = tt.traceParent
			got, err := fields(&o)
			if err != nil {
				t.Fatal(err)
			}
			if want := tt.want(body(o)); !reflect.DeepEqual(got, want) {
				t.Errorf("fields:\n got %q\nwant %q", got, want)
			}
		})
	}
}

func TestFieldsEncodeError(t *testing.T) {
	o := &wire.Outcome{ID: "bad", Output: json.RawMessage(`{`)}
	if _, err := fields(o); err == nil || !strings.Contains(err.Error(), "encoding outcome bad") {
		t.Errorf("fields with invalid Output: err = %v, want an encoding error", err)
	}
}
