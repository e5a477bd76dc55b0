package ferry

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
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
	runServer(t, s)
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

// TestTimerPausedOverTheAPI: a timer is a managed trigger: listed with
// kind timer and its next tick, paused through the API it submits no
// task (its ticks are skipped), resumed it ticks again.
func TestTimerPausedOverTheAPI(t *testing.T) {
	t.Parallel()
	cfg, err := config.Parse("test.yaml", []byte(`
server: { listen: "127.0.0.1:0" }
store: { embedded: { path: `+t.TempDir()+` } }
tenants: [ { name: t, api_keys: [timer-key-0001] } ]
functions: [ { name: f, tenant: t, backend: { go: {} } } ]
triggers:
  - { name: tick, function: f, source: { timer: { cron: "@every 1s" } }, catch_up: none }
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := make(chan time.Time, 64)
	fn := dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		calls <- inv.Time
		return &dispatcher.Result{}, nil
	})
	s, err := New(cfg, WithFunction("t", "f", fn), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	runServer(t, s)
	base := "http://" + s.Addr().String() + "/v1/triggers"
	call := func(method, url string) map[string]any {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		req.Header.Set("Authorization", "Bearer timer-key-0001")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: %d %v", method, url, resp.StatusCode, err)
		}
		return body
	}
	select {
	case <-calls:
	case <-time.After(10 * time.Second):
		t.Fatal("no tick reached the function within 10s")
	}
	list := call(http.MethodGet, base)["triggers"].([]any)
	if len(list) != 1 {
		t.Fatalf("triggers %v, want one", list)
	}
	if tr := list[0].(map[string]any); tr["kind"] != "timer" || tr["state"] != "running" || tr["next_tick"] == nil {
		t.Errorf("listed %v, want kind timer, running, a next_tick", tr)
	}
	if tr := call(http.MethodPost, base+"/tick/pause"); tr["state"] != "paused" {
		t.Fatalf("pause answered %v", tr)
	}
	pausedAt := time.Now()
	// A tick whose task was submitted before the pause may still run;
	// after it, none may: watch three ticks go by.
	deadline := time.After(3500 * time.Millisecond)
	for watching := true; watching; {
		select {
		case at := <-calls:
			if at.After(pausedAt.Add(time.Second)) {
				t.Fatalf("the tick of %v ran although the timer was paused at %v", at, pausedAt)
			}
		case <-deadline:
			watching = false
		}
	}
	if tr := call(http.MethodPost, base+"/tick/resume"); tr["state"] != "running" {
		t.Fatalf("resume answered %v", tr)
	}
	select {
	case at := <-calls:
		if !at.After(pausedAt) {
			t.Errorf("after resume, a tick of %v (before the pause at %v)", at, pausedAt)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no tick after resume within 10s")
	}
}

// runServer runs s until the test ends, then checks that Run returned
// without an error.
func runServer(t *testing.T, s *Server) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}
