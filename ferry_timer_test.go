package ferry

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/timer"
)

// TestTimerTriggerInvokes: a timer trigger's ticks reach the function as
// tasks whose ce-time is the tick and whose ce-id is the tick's task id,
// with the configured payload and 0 hops.
func TestTimerTriggerInvokes(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("test.yaml", []byte(`
server: { listen: "127.0.0.1:0" }
store: { embedded: { path: `+t.TempDir()+` } }
tenants: [ { name: t, api_keys: [k] } ]
functions: [ { name: f, tenant: t, backend: { go: {} } } ]
triggers:
  - { name: tick, function: f, source: { timer: { cron: "@every 1s", payload: { hello: timer } } }, catch_up: none }
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := make(chan *dispatcher.Invocation, 16)
	fn := dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		select {
		case calls <- inv:
		default:
		}
		return &dispatcher.Result{}, nil
	})
	s, err := New(cfg, WithFunction("t", "f", fn), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Addr().(*net.TCPAddr); !ok {
		t.Fatalf("Addr = %v", s.Addr())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	for range 2 {
		select {
		case inv := <-calls:
			if inv.Time.Nanosecond() != 0 || inv.Time.IsZero() {
				t.Errorf("ce-time %v is not a whole second", inv.Time)
			}
			if want := timer.TaskID("t", "tick", inv.Time); inv.ID != want {
				t.Errorf("ce-id %s, want the tick's task id %s", inv.ID, want)
			}
			if string(inv.Payload) != `{"hello":"timer"}` || inv.ContentType != "application/json" || inv.Hops != 0 {
				t.Errorf("payload %s (%s), hops %d; want {\"hello\":\"timer\"} (application/json), 0", inv.Payload, inv.ContentType, inv.Hops)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no tick reached the function within 10s")
		}
	}
	if d := s.readinessDetail(); len(d.Triggers) != 1 || d.Triggers[0].Name != "tick" || d.Triggers[0].State != "connected" {
		t.Errorf("readiness triggers %+v, want tick connected", d.Triggers)
	}
}
