// Package localferry runs a real Ferry inside a test process: ferry.New on
// an embedded store in a temporary directory, a listener on a free local
// port, and in-process Go functions as backends. The client package and
// the ferry command test against it end to end.
package localferry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry"
	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
)

// Tenant and Key are the one tenant of a local Ferry and its API key.
const (
	Tenant = "t"
	Key    = "local-test-key"
)

// Start runs a Ferry whose tenant Tenant has one function per entry of
// functions (its name and its Go backend, each with max_attempts 1, so a
// failure is final), until the test ends. It returns the API's base URL.
func Start(t testing.TB, functions map[string]dispatcher.Backend) string {
	t.Helper()
	names := make([]string, 0, len(functions))
	for name := range functions {
		names = append(names, name)
	}
	sort.Strings(names)
	var yaml strings.Builder
	fmt.Fprintf(&yaml, "server: { listen: 127.0.0.1:0 }\nstore: { embedded: { path: %q } }\n", t.TempDir())
	fmt.Fprintf(&yaml, "tenants: [ { name: %s, api_keys: [%s] } ]\nfunctions:\n", Tenant, Key)
	for _, name := range names {
		fmt.Fprintf(&yaml, "  - { name: %s, tenant: %s, backend: { go: {} }, retry: { max_attempts: 1 } }\n", name, Tenant)
	}
	cfg, err := config.Parse("localferry.yaml", []byte(yaml.String()), nil)
	if err != nil {
		t.Fatalf("localferry: config: %v", err)
	}
	opts := []ferry.Option{ferry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))}
	for _, name := range names {
		opts = append(opts, ferry.WithFunction(Tenant, name, functions[name]))
	}
	srv, err := ferry.New(cfg, opts...)
	if err != nil {
		t.Fatalf("localferry: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("localferry: run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("localferry: still running 30 s after the test ended")
		}
	})
	return "http://" + srv.Addr().String()
}

// Echo is a backend whose output is its input.
var Echo = dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
	return &dispatcher.Result{Output: inv.Payload, ContentType: inv.ContentType}, nil
})

// Fail is a backend that always fails for good with code "boom".
var Fail = dispatcher.BackendFunc(func(context.Context, *dispatcher.Invocation) (*dispatcher.Result, error) {
	return nil, dispatcher.Permanent("boom", fmt.Errorf("the function failed on purpose"))
})
