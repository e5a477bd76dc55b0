package routes

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ferrydev/ferry/async"
)

// fakeTriggers are tenant a's orders (kafka) and tenant b's ticks (timer).
type fakeTriggers struct {
	mu    sync.Mutex
	list  []Trigger
	fail  error    // SetPaused's error
	calls []string // "name=paused" per SetPaused
}

func newFakeTriggers() *fakeTriggers {
	lag := int64(7)
	return &fakeTriggers{list: []Trigger{
		{Name: "orders", Tenant: "a", Function: "f", Kind: "kafka", State: TriggerRunning, Connected: true, Lag: &lag},
		{Name: "ticks", Tenant: "b", Function: "g", Kind: "timer", State: TriggerDisconnected, LastError: "store unreachable"},
	}}
}

func (f *fakeTriggers) List() []Trigger {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.list)
}

func (f *fakeTriggers) SetPaused(_ context.Context, name string, paused bool) (Trigger, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, name+"="+map[bool]string{true: "paused", false: "running"}[paused])
	if f.fail != nil {
		return Trigger{}, f.fail
	}
	for i := range f.list {
		if t := &f.list[i]; t.Name == name {
			t.Paused, t.State = paused, TriggerRunning
			if paused {
				t.State = TriggerPaused
			}
			return *t, nil
		}
	}
	return Trigger{}, errors.New("no such trigger")
}

func (f *fakeTriggers) setCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func triggerServer(t *testing.T, f *fakeTriggers) *httptest.Server {
	t.Helper()
	auth := async.NewAuth(map[string][]string{"a": {"key-a"}, "b": {"key-b"}}, "key-admin")
	mux := http.NewServeMux()
	(&triggerAPI{auth: auth, triggers: f, log: slog.New(slog.NewTextHandler(io.Discard, nil))}).register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request and decodes the JSON answer into out (when not nil).
func do(t *testing.T, srv *httptest.Server, method, path, key string, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(""))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: Content-Type %q, body %s", method, path, ct, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, body)
		}
	}
	return resp
}

type triggerList struct {
	Triggers []Trigger `json:"triggers"`
}

func names(l triggerList) []string {
	var out []string
	for _, t := range l.Triggers {
		out = append(out, t.Name)
	}
	return out
}

func TestTriggerListIsPerTenant(t *testing.T) {
	t.Parallel()
	srv := triggerServer(t, newFakeTriggers())
	tests := []struct {
		key  string
		want []string
	}{
		{"key-a", []string{"orders"}},
		{"key-b", []string{"ticks"}},
		{"key-admin", []string{"orders", "ticks"}},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			var got triggerList
			if resp := do(t, srv, http.MethodGet, "/v1/triggers", tt.key, &got); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := names(got); !slices.Equal(got, tt.want) {
				t.Errorf("triggers %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTriggerJSON: the fields as the API writes them; lag, last_error and
// next_tick only when there is one.
func TestTriggerJSON(t *testing.T) {
	t.Parallel()
	srv := triggerServer(t, newFakeTriggers())
	var got map[string][]map[string]any
	do(t, srv, http.MethodGet, "/v1/triggers", "key-admin", &got)
	want := []map[string]any{
		{"name": "orders", "tenant": "a", "function": "f", "kind": "kafka", "state": "running", "paused": false, "connected": true, "lag": 7.0},
		{"name": "ticks", "tenant": "b", "function": "g", "kind": "timer", "state": "disconnected", "paused": false, "connected": false, "last_error": "store unreachable"},
	}
	if !reflect.DeepEqual(got["triggers"], want) {
		t.Errorf("GET /v1/triggers = %v\nwant %v", got["triggers"], want)
	}
}

func TestTriggerPauseAndResume(t *testing.T) {
	t.Parallel()
	f := newFakeTriggers()
	srv := triggerServer(t, f)
	var got Trigger
	if resp := do(t, srv, http.MethodPost, "/v1/triggers/orders/pause", "key-a", &got); resp.StatusCode != 200 {
		t.Fatalf("pause: status %d", resp.StatusCode)
	}
	if got.Name != "orders" || got.State != TriggerPaused || !got.Paused {
		t.Fatalf("pause answered %+v, want orders paused", got)
	}
	var one Trigger
	do(t, srv, http.MethodGet, "/v1/triggers/orders", "key-a", &one)
	if !reflect.DeepEqual(one, got) {
		t.Errorf("GET /v1/triggers/orders = %+v, want the pause's answer %+v", one, got)
	}
	// Again: the same answer, no error.
	if resp := do(t, srv, http.MethodPost, "/v1/triggers/orders/pause", "key-admin", &got); resp.StatusCode != 200 || got.State != TriggerPaused {
		t.Fatalf("second pause: status %d, %+v", resp.StatusCode, got)
	}
	if resp := do(t, srv, http.MethodPost, "/v1/triggers/orders/resume", "key-a", &got); resp.StatusCode != 200 || got.State != TriggerRunning || got.Paused {
		t.Fatalf("resume: status %d, %+v", resp.StatusCode, got)
	}
	if got, want := f.setCalls(), []string{"orders=paused", "orders=paused", "orders=running"}; !slices.Equal(got, want) {
		t.Errorf("SetPaused calls %v, want %v", got, want)
	}
}

// TestTriggerErrors: 404 for another tenant's trigger exactly as for an
// unknown one, 401 without a known key, 405 with Allow, 503 when the state
// cannot be stored.
func TestTriggerErrors(t *testing.T) {
	t.Parallel()
	f := newFakeTriggers()
	srv := triggerServer(t, f)
	tests := []struct {
		name, method, path, key string
		status                  int
		code, allow             string
	}{
		{"OtherTenantsPause", http.MethodPost, "/v1/triggers/ticks/pause", "key-a", 404, "trigger_not_found", ""},
		{"OtherTenantsResume", http.MethodPost, "/v1/triggers/ticks/resume", "key-a", 404, "trigger_not_found", ""},
		{"OtherTenantsGet", http.MethodGet, "/v1/triggers/ticks", "key-a", 404, "trigger_not_found", ""},
		{"UnknownPause", http.MethodPost, "/v1/triggers/nope/pause", "key-a", 404, "trigger_not_found", ""},
		{"UnknownAdmin", http.MethodPost, "/v1/triggers/nope/pause", "key-admin", 404, "trigger_not_found", ""},
		{"NoKey", http.MethodGet, "/v1/triggers", "", 401, "unauthorized", ""},
		{"BadKey", http.MethodPost, "/v1/triggers/orders/pause", "nope", 401, "unauthorized", ""},
		{"ListPost", http.MethodPost, "/v1/triggers", "key-a", 405, "method_not_allowed", "GET"},
		{"PauseGet", http.MethodGet, "/v1/triggers/orders/pause", "key-a", 405, "method_not_allowed", "POST"},
		{"ResumeDelete", http.MethodDelete, "/v1/triggers/orders/resume", "key-a", 405, "method_not_allowed", "POST"},
		{"TriggerPut", http.MethodPut, "/v1/triggers/orders", "key-a", 405, "method_not_allowed", "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			resp := do(t, srv, tt.method, tt.path, tt.key, &body)
			if resp.StatusCode != tt.status || body.Error.Code != tt.code || body.Error.Message == "" || resp.Header.Get("Allow") != tt.allow {
				t.Fatalf("%s %s = %d %+v, Allow %q; want %d %s, Allow %q", tt.method, tt.path, resp.StatusCode, body.Error, resp.Header.Get("Allow"), tt.status, tt.code, tt.allow)
			}
			if tt.status == 404 && strings.Contains(body.Error.Message, "tenant") {
				t.Errorf("the 404 says more than an unknown trigger's: %q", body.Error.Message)
			}
		})
	}
	if calls := f.setCalls(); len(calls) != 0 {
		t.Errorf("refused requests changed states: %v", calls)
	}

	f.mu.Lock()
	f.fail = errors.New("redis down")
	f.mu.Unlock()
	var body struct {
		Error struct{ Code string } `json:"error"`
	}
	resp := do(t, srv, http.MethodPost, "/v1/triggers/orders/pause", "key-a", &body)
	if resp.StatusCode != 503 || body.Error.Code != "unavailable" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("pause with the store down = %d %s, Retry-After %q; want 503 unavailable with Retry-After", resp.StatusCode, body.Error.Code, resp.Header.Get("Retry-After"))
	}
}
