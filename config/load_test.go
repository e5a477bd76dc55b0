package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lookup returns a lookupEnv over env.
func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// sameConfig fails t when got and want differ, showing both as JSON.
func sameConfig(t *testing.T, got, want *Config) {
	t.Helper()
	g, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if string(g) != string(w) {
		t.Errorf("config differs\n got: %s\nwant: %s", g, w)
	}
}

func TestLoadQuickstart(t *testing.T) {
	t.Parallel()
	const file = "examples/quickstart.yaml"
	got, err := Load(file)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	retry := Retry{MaxAttempts: 3, InitialInterval: Duration(time.Second), MaxInterval: Duration(5 * time.Minute), Multiplier: 2, MaxAge: Duration(6 * time.Hour)}
	want := &Config{
		File:       file,
		Server:     Server{Listen: "127.0.0.1:8080", MaxPayload: 256 << 10, ShutdownTimeout: Duration(30 * time.Second), ReadHeaderTimeout: Duration(5 * time.Second), GCHeapFloor: new(ByteSize(64 << 20))},
		Store:      Store{Embedded: &EmbeddedStore{Path: "./data"}, Retention: Duration(24 * time.Hour)},
		LoopGuard:  LoopGuard{MaxHops: 16, TraceWindow: Duration(DefaultTraceWindow)},
		Dispatcher: Dispatcher{Workers: 64},
		Log:        Log{Level: "info", Format: "json"},
		Tenants:    []Tenant{{Name: "demo", APIKeys: []string{"demo-key"}, MaxConcurrency: 100, MaxQueued: 100000}},
		Functions: []Function{{
			Name:           "echo",
			Tenant:         "demo",
			Backend:        Backend{Exec: &ExecBackend{Command: []string{"cat"}, Timeout: Duration(10 * time.Second)}},
			MaxConcurrency: 10,
			Retry:          retry,
			Destinations: Destinations{
				OnSuccess: []Destination{{Log: &LogSink{}}},
				OnFailure: []Destination{{Log: &LogSink{}}},
			},
		}, {
			Name:   "fail",
			Tenant: "demo",
			Backend: Backend{Exec: &ExecBackend{
				Command: []string{"sh", "-c", "cat >/dev/null; echo 'fail: this function always fails' >&2; exit 1"},
				Timeout: Duration(10 * time.Second),
			}},
			MaxConcurrency: 2,
			Retry:          Retry{MaxAttempts: 2, InitialInterval: retry.InitialInterval, MaxInterval: retry.MaxInterval, Multiplier: retry.Multiplier, MaxAge: retry.MaxAge},
			Destinations:   Destinations{OnFailure: []Destination{{Log: &LogSink{}}}},
		}},
	}
	sameConfig(t, got, want)
	if got.Function("demo", "echo").Destinations.OnSuccess[0].Kind() != "log" {
		t.Errorf("on_success destination is not a log sink")
	}
}

func TestLoadFull(t *testing.T) {
	t.Setenv("DEMO_API_KEY", "secret-key")
	got, err := Load("examples/full.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if keys := got.Tenant("demo").APIKeys; len(keys) != 1 || keys[0] != "secret-key" {
		t.Errorf("api_keys = %q, want [secret-key]", keys)
	}
	f := got.Function("demo", "echo")
	if f == nil || f.Backend.HTTP == nil {
		t.Fatalf("function echo with an http backend missing: %+v", got.Functions)
	}
	if h := f.Backend.HTTP.Headers["Authorization"]; h != "Bearer secret-key" {
		t.Errorf("Authorization header = %q, want %q", h, "Bearer secret-key")
	}
	w := f.Destinations.OnSuccess[0].Webhook
	if w == nil || w.Retry.MaxAttempts != DefaultSinkMaxAttempts || w.Timeout.D() != DefaultWebhookTimeout {
		t.Errorf("webhook destination = %+v", w)
	}
	if tr := got.Telemetry.Traces; tr.Endpoint != "http://127.0.0.1:4318" || tr.Protocol != ProtocolHTTP || tr.SampleRatio == nil || *tr.SampleRatio != 1 {
		t.Errorf("telemetry.traces = %+v", tr)
	}
}

func TestLoadMissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want an error wrapping os.ErrNotExist", err)
	}
}

func TestParseDefaults(t *testing.T) {
	t.Parallel()
	const src = `
tenants: [ { name: t, api_keys: [k] } ]
functions:
  - { name: h, tenant: t, backend: { http: { url: "http://127.0.0.1:9000/" } },
      destinations: { on_failure: [ { webhook: { url: "https://example.com/hook", secret: "whsec_MDEyMzQ1Njc4OWFiY2RlZg==" } } ] } }
  - { name: e, tenant: t, backend: { exec: { command: [cat] } } }
  - { name: g, tenant: t, backend: { go: {} }, retry: { max_attempts: 7 } }
`
	got, err := Parse("d.yaml", []byte(src), nil)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	fnRetry := Retry{MaxAttempts: DefaultMaxAttempts, InitialInterval: Duration(DefaultInitialInterval), MaxInterval: Duration(DefaultMaxInterval), Multiplier: DefaultMultiplier, MaxAge: Duration(DefaultMaxAge)}
	sinkRetry := Retry{MaxAttempts: DefaultSinkMaxAttempts, InitialInterval: Duration(DefaultInitialInterval), MaxInterval: Duration(DefaultMaxInterval), Multiplier: DefaultMultiplier, MaxAge: Duration(DefaultSinkMaxAge)}
	gRetry := fnRetry
	gRetry.MaxAttempts = 7
	want := &Config{
		File:       "d.yaml",
		Server:     Server{Listen: DefaultListen, MaxPayload: DefaultMaxPayload, ShutdownTimeout: Duration(DefaultShutdownTimeout), ReadHeaderTimeout: Duration(DefaultReadHeaderTimeout), GCHeapFloor: new(ByteSize(DefaultGCHeapFloor))},
		Store:      Store{Embedded: &EmbeddedStore{Path: DefaultDataPath}, Retention: Duration(DefaultRetention)},
		LoopGuard:  LoopGuard{MaxHops: DefaultMaxHops, TraceWindow: Duration(DefaultTraceWindow)},
		Dispatcher: Dispatcher{Workers: DefaultWorkers},
		Log:        Log{Level: "info", Format: "json"},
		Tenants:    []Tenant{{Name: "t", APIKeys: []string{"k"}, MaxConcurrency: DefaultTenantConcurrency, MaxQueued: DefaultMaxQueued}},
		Functions: []Function{
			{Name: "h", Tenant: "t", MaxConcurrency: DefaultFunctionConc, Retry: fnRetry,
				Backend: Backend{HTTP: &HTTPBackend{URL: "http://127.0.0.1:9000/", Timeout: Duration(DefaultHTTPTimeout)}},
				Destinations: Destinations{OnFailure: []Destination{{Webhook: &WebhookSink{
					URL: "https://example.com/hook", Secret: "whsec_MDEyMzQ1Njc4OWFiY2RlZg==",
					Timeout: Duration(DefaultWebhookTimeout), Retry: sinkRetry,
				}}}}},
			{Name: "e", Tenant: "t", MaxConcurrency: DefaultFunctionConc, Retry: fnRetry,
				Backend: Backend{Exec: &ExecBackend{Command: []string{"cat"}, Timeout: Duration(DefaultExecTimeout)}}},
			{Name: "g", Tenant: "t", MaxConcurrency: DefaultFunctionConc, Retry: gRetry,
				Backend: Backend{Go: &GoBackend{Timeout: Duration(DefaultGoTimeout)}}},
		},
	}
	sameConfig(t, got, want)
	if err := got.Validate(); err != nil {
		t.Errorf("Validate after Parse: %v", err)
	}
}

func TestExpand(t *testing.T) {
	t.Parallel()
	env := lookup(map[string]string{"A": "alpha", "EMPTY": "", "B_2": "b"})
	tests := []struct {
		name, in, want, err string
	}{
		{name: "NoVariables", in: "plain", want: "plain"},
		{name: "Variable", in: "${A}", want: "alpha"},
		{name: "VariableInText", in: "x-${A}-${B_2}-y", want: "x-alpha-b-y"},
		{name: "EmptyVariable", in: "[${EMPTY}]", want: "[]"},
		{name: "DollarDollar", in: "cost $$5", want: "cost $5"},
		{name: "EscapedVariable", in: "$${A}", want: "${A}"},
		{name: "LoneDollar", in: "$A and $", want: "$A and $"},
		{name: "Unset", in: "${DEMO_API_KEY}", err: "environment variable DEMO_API_KEY is not set"},
		{name: "Unterminated", in: "${A", err: `unterminated "${" (write "$$" for a literal "$")`},
		{name: "BadName", in: "${A-B}", err: `"A-B" is not a valid environment variable name`},
		{name: "EmptyName", in: "${}", err: `"" is not a valid environment variable name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := expand(tt.in, env)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("expand(%q) error = %v, want %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestParseExpandsValuesNotKeys(t *testing.T) {
	t.Parallel()
	const src = `
tenants:
  - name: "${TENANT}"
    api_keys: ["${KEY}", "$${KEY}", "a$$b"]
    max_queued: ${QUEUED}
functions:
  - name: f
    tenant: acme
    backend: { http: { url: "${URL}", headers: { "${KEY}": "v" } } }
`
	env := map[string]string{"TENANT": "acme", "KEY": "k1", "QUEUED": "42", "URL": "https://fn.example.com/"}
	got, err := Parse("e.yaml", []byte(src), lookup(env))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tn := got.Tenant("acme")
	if tn == nil {
		t.Fatalf("tenant acme missing: %+v", got.Tenants)
	}
	if want := []string{"k1", "${KEY}", "a$b"}; len(tn.APIKeys) != 3 || tn.APIKeys[0] != want[0] || tn.APIKeys[1] != want[1] || tn.APIKeys[2] != want[2] {
		t.Errorf("api_keys = %q, want %q", tn.APIKeys, want)
	}
	if tn.MaxQueued != 42 {
		t.Errorf("max_queued = %d, want 42", tn.MaxQueued)
	}
	h := got.Functions[0].Backend.HTTP
	if h.URL != env["URL"] {
		t.Errorf("url = %q, want %q", h.URL, env["URL"])
	}
	if _, ok := h.Headers["${KEY}"]; !ok {
		t.Errorf("header keys = %v, want the key left unexpanded", h.Headers)
	}
}

func TestGCHeapFloor(t *testing.T) {
	t.Parallel()
	const base = "tenants: [ { name: t, api_keys: [k] } ]\n"
	tests := []struct {
		name, src string
		want      ByteSize
	}{
		{"absent: the default", base, DefaultGCHeapFloor},
		{"zero: off", base + "server: { gc_heap_floor: 0 }\n", 0},
		{"a size", base + "server: { gc_heap_floor: 256MiB }\n", 256 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("g.yaml", []byte(tt.src), nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if c.Server.GCHeapFloor == nil || *c.Server.GCHeapFloor != tt.want {
				t.Fatalf("gc_heap_floor = %v, want %d", c.Server.GCHeapFloor, tt.want)
			}
		})
	}
	_, err := Parse("g.yaml", []byte(base+"server: { gc_heap_floor: lots }\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `g.yaml:2: server.gc_heap_floor: "lots" is not a size`) {
		t.Fatalf("bad size: got %v", err)
	}
}
