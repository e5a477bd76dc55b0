package ferry

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/internal/assemble"
)

// TestNewClosesProducersWhenTheDispatcherFails: when New fails after the
// destinations' producers were opened (here dispatcher.New refuses a
// function's retry policy), it closes them.
func TestNewClosesProducersWhenTheDispatcherFails(t *testing.T) {
	var prods *assemble.Producers
	newProducers = func() *assemble.Producers {
		prods = assemble.NewProducers()
		return prods
	}
	t.Cleanup(func() { newProducers = assemble.NewProducers })

	cfg, err := config.Parse("test.yaml", []byte(`
store: { embedded: { path: `+t.TempDir()+` } }
tenants: [ { name: t, api_keys: [k] } ]
functions:
  - name: f
    tenant: t
    backend: { http: { url: "http://127.0.0.1:1/" } }
    destinations: { on_failure: [ { kafka: { brokers: ["127.0.0.1:1"], topic: dlq } } ] }
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Functions[0].Retry.MaxAttempts = 0 // valid configs never have it; dispatcher.New refuses it

	s, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err == nil {
		_ = s.Close()
		t.Fatal("New succeeded; want the dispatcher's error")
	}
	if !strings.Contains(err.Error(), "max_attempts") {
		t.Errorf("New: %v, want the dispatcher's max_attempts error", err)
	}
	if prods == nil {
		t.Fatal("New made no producers")
	}
	if n := prods.Open(); n != 0 {
		t.Errorf("%d producers left open after New failed, want 0", n)
	}
}
