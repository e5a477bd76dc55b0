package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/internal/telemetry/otlptest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// clearEnv unsets every variable that could turn export on or change it.
func clearEnv(t *testing.T) {
	for _, k := range []string{EnvEndpoint, EnvTracesEndpoint, EnvProtocol, EnvTracesProtocol, EnvSDKDisabled,
		EnvTracesExporter, "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG"} {
		t.Setenv(k, "")
	}
}

// TestOffIsPropagationTracer: with nothing configured, or export turned
// off by the standard variables, Ferry keeps the propagation tracer (no
// SDK, nothing recorded) and Shutdown costs nothing.
func TestOffIsPropagationTracer(t *testing.T) {
	tests := []struct {
		name string
		cfg  config.Traces
		env  map[string]string
	}{
		{name: "NothingSet"},
		{name: "ProtocolWithoutEndpoint", cfg: config.Traces{Protocol: config.ProtocolGRPC}, env: map[string]string{EnvProtocol: "grpc"}},
		{name: "SDKDisabled", cfg: config.Traces{Endpoint: "http://127.0.0.1:1"}, env: map[string]string{EnvSDKDisabled: "true"}},
		{name: "ExporterNone", env: map[string]string{EnvEndpoint: "http://127.0.0.1:1", EnvTracesExporter: "none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			tr, err := New(context.Background(), tt.cfg, quiet)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Enabled() || tr.Tracer() != dispatcher.PropagationTracer() {
				t.Fatalf("tracer %T (enabled %v), want the propagation tracer", tr.Tracer(), tr.Enabled())
			}
			if _, span := tr.Tracer().Start(context.Background(), "x"); span.IsRecording() {
				t.Error("a span records with export off")
			}
			if err := tr.Shutdown(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestExport: spans reach an OTLP/HTTP receiver, from the config's
// endpoint (a URL without a path gets /v1/traces) or from
// OTEL_EXPORTER_OTLP_ENDPOINT, named service "ferry" unless
// OTEL_SERVICE_NAME says otherwise; Shutdown flushes them.
func TestExport(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(url string) config.Traces
		env     func(url string) map[string]string
		service string
	}{
		{name: "ConfigEndpoint", cfg: func(u string) config.Traces { return config.Traces{Endpoint: u} }, service: "ferry"},
		{name: "ConfigEndpointWithPath", cfg: func(u string) config.Traces {
			return config.Traces{Endpoint: u + "/v1/traces", Protocol: config.ProtocolHTTP, Headers: map[string]string{"x-key": "k"}}
		}, service: "ferry"},
		{name: "EnvEndpoint", env: func(u string) map[string]string { return map[string]string{EnvEndpoint: u} }, service: "ferry"},
		{name: "ConfigWinsOverEnv", cfg: func(u string) config.Traces { return config.Traces{Endpoint: u} },
			env: func(string) map[string]string { return map[string]string{EnvEndpoint: "http://127.0.0.1:1"} }, service: "ferry"},
		{name: "ServiceNameFromEnv", env: func(u string) map[string]string {
			return map[string]string{EnvTracesEndpoint: u + "/v1/traces", "OTEL_SERVICE_NAME": "ferry-eu"}
		}, service: "ferry-eu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			rcv := otlptest.New(t)
			var cfg config.Traces
			if tt.cfg != nil {
				cfg = tt.cfg(rcv.URL())
			}
			if tt.env != nil {
				for k, v := range tt.env(rcv.URL()) {
					t.Setenv(k, v)
				}
			}
			tr, err := New(context.Background(), cfg, quiet)
			if err != nil {
				t.Fatal(err)
			}
			if !tr.Enabled() || tr.Protocol() != config.ProtocolHTTP || !strings.HasPrefix(tr.Endpoint(), rcv.URL()) {
				t.Fatalf("enabled %v, protocol %q, endpoint %q", tr.Enabled(), tr.Protocol(), tr.Endpoint())
			}
			_, span := tr.Tracer().Start(context.Background(), "test.span", trace.WithSpanKind(trace.SpanKindInternal))
			if !span.IsRecording() {
				t.Fatal("the span does not record")
			}
			span.End()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := tr.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			got := otlptest.Named(rcv.Spans(), "test.span", "", nil)
			if len(got) != 1 {
				t.Fatalf("received %d test spans, want 1:\n%s", len(got), otlptest.Dump(rcv.Spans()))
			}
			if s := got[0].Resource["service.name"]; s != tt.service {
				t.Errorf("service.name %v, want %q", s, tt.service)
			}
		})
	}
}

// TestSampleRatio: sample_ratio 0 records no new trace but still makes a
// valid span context, so traceparents flow on.
func TestSampleRatio(t *testing.T) {
	clearEnv(t)
	zero := 0.0
	tr, err := New(context.Background(), config.Traces{Endpoint: otlptest.New(t).URL(), SampleRatio: &zero}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tr.Shutdown(context.Background()) }()
	_, span := tr.Tracer().Start(context.Background(), "x")
	if span.IsRecording() || !span.SpanContext().IsValid() || span.SpanContext().IsSampled() {
		t.Errorf("span recording %v, context %v; want not recording, valid, not sampled", span.IsRecording(), span.SpanContext())
	}
}

// TestProtocols: grpc makes a gRPC exporter; an unknown protocol from the
// environment is an error naming the variables.
func TestProtocols(t *testing.T) {
	clearEnv(t)
	tr, err := New(context.Background(), config.Traces{Endpoint: "http://127.0.0.1:4317", Protocol: config.ProtocolGRPC}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Protocol() != config.ProtocolGRPC {
		t.Errorf("protocol %q", tr.Protocol())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = tr.Shutdown(ctx) // nothing listens; nothing to flush either

	t.Setenv(EnvProtocol, "http/json")
	if _, err := New(context.Background(), config.Traces{Endpoint: "http://127.0.0.1:4318"}, quiet); err == nil ||
		!strings.Contains(err.Error(), EnvProtocol) {
		t.Errorf("New with %s=http/json: %v, want an error naming it", EnvProtocol, err)
	}
}

// traceService is an OTLP/gRPC receiver that counts the spans it gets.
type traceService struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names []string
}

func (s *traceService) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				s.names = append(s.names, sp.GetName())
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

// TestExportGRPC: protocol grpc sends spans to an OTLP/gRPC receiver (an
// http:// endpoint: no TLS).
func TestExportGRPC(t *testing.T) {
	clearEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	svc := &traceService{}
	collectortrace.RegisterTraceServiceServer(srv, svc)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	tr, err := New(context.Background(), config.Traces{Endpoint: "http://" + ln.Addr().String(), Protocol: config.ProtocolGRPC}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.Tracer().Start(context.Background(), "grpc.span")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	if len(svc.names) != 1 || svc.names[0] != "grpc.span" {
		t.Errorf("the gRPC receiver got spans %q, want [grpc.span]", svc.names)
	}
}
