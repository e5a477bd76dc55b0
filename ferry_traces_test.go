package ferry

import (
	"io"
	"log/slog"
	"testing"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/internal/telemetry"
)

// TestTracesOffByDefault: with no telemetry section and no OTEL_*
// endpoint, a Server records no spans: its API and dispatcher run with
// the propagation tracer (and its fast paths).
func TestTracesOffByDefault(t *testing.T) {
	for _, k := range []string{telemetry.EnvEndpoint, telemetry.EnvTracesEndpoint} {
		t.Setenv(k, "")
	}
	cfg, err := config.Parse("test.yaml", []byte(`
server: { listen: "127.0.0.1:0" }
store: { embedded: { path: `+t.TempDir()+` } }
tenants: [ { name: t, api_keys: [k] } ]
functions: [ { name: f, tenant: t, backend: { go: {} } } ]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))),
		WithFunction("t", "f", dispatcher.BackendFunc(nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.traces.Enabled() || s.traces.Tracer() != dispatcher.PropagationTracer() {
		t.Errorf("tracer %T (enabled %v), want the propagation tracer", s.traces.Tracer(), s.traces.Enabled())
	}
}
