package log

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/ferrydev/ferry/wire"
)

func TestDeliverLogs(t *testing.T) {
	tests := []struct {
		name      string
		outcome   *wire.Outcome
		wantLevel string
		wantCode  any
	}{
		{
			name:      "Succeeded",
			outcome:   &wire.Outcome{Type: wire.TypeSucceeded, ID: "t1", Tenant: "demo", Function: "echo", Status: "succeeded", Attempts: 1, Hops: 1},
			wantLevel: "INFO",
		},
		{
			name: "Failed",
			outcome: &wire.Outcome{Type: wire.TypeFailed, ID: "t2", Tenant: "demo", Function: "echo", Status: "failed", Attempts: 3, Hops: 2,
				Error: &wire.OutcomeError{Code: "http_503", Message: "unavailable"}},
			wantLevel: "WARN",
			wantCode:  "http_503",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := New(slog.New(slog.NewJSONHandler(&buf, nil)))
			if err := s.Deliver(context.Background(), tt.outcome); err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatalf("log record %q: %v", buf.String(), err)
			}
			o := tt.outcome
			want := map[string]any{
				"level": tt.wantLevel, "type": o.Type, "id": o.ID, "tenant": o.Tenant, "function": o.Function,
				"status": o.Status, "attempts": float64(o.Attempts), "hops": float64(o.Hops), "error_code": tt.wantCode,
			}
			for k, v := range want {
				if rec[k] != v {
					t.Errorf("%s = %v, want %v (record %s)", k, rec[k], v, buf.String())
				}
			}
		})
	}
}

func TestDeliverNeverFails(t *testing.T) {
	s := New(nil)
	if err := s.Deliver(context.Background(), nil); err != nil {
		t.Errorf("Deliver(nil) = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New(slog.New(slog.DiscardHandler)).Deliver(ctx, &wire.Outcome{ID: "x"}); err != nil {
		t.Errorf("Deliver with a cancelled context = %v", err)
	}
}
