// Package telemetry builds Ferry's trace pipeline from the telemetry
// config section and the standard OpenTelemetry environment variables: an
// OTLP exporter (HTTP or gRPC) behind a batching SDK TracerProvider when
// an endpoint is set, and otherwise dispatcher.PropagationTracer, which
// records nothing and only passes trace context on (today's zero-cost
// path).
//
// Precedence, per key: telemetry.traces in ferry.yaml, then the standard
// variable (OTEL_EXPORTER_OTLP_TRACES_* before OTEL_EXPORTER_OTLP_*), then
// the OpenTelemetry default. Export is off unless an endpoint is set in
// either place; OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn
// it off whatever else is set.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/internal/redact"
)

// ServiceName is the service.name of Ferry's spans unless OTEL_SERVICE_NAME
// (or service.name in OTEL_RESOURCE_ATTRIBUTES) names another.
const ServiceName = "ferry"

// InstrumentationName names the tracer Ferry's spans come from.
const InstrumentationName = "github.com/ferrydev/ferry"

// The standard variables Ferry reads itself (the exporters and the SDK
// read the others: headers, timeouts, OTEL_TRACES_SAMPLER, OTEL_BSP_*,
// OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES).
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
)

// Traces is Ferry's trace pipeline: the tracer the API, the dispatcher and
// the triggers start spans with, and what flushes them at shutdown.
type Traces struct {
	tracer   trace.Tracer
	tp       *sdktrace.TracerProvider // nil while export is off
	endpoint string                   // where spans go, credentials masked
	protocol string
	log      *slog.Logger
}

// New sets up trace export as c and the environment say. With export off
// it returns Traces whose Tracer is dispatcher.PropagationTracer and costs
// nothing to shut down. Export errors (a receiver that is down) are logged
// to log at warn level through OpenTelemetry's global error handler; spans
// that cannot be sent are dropped, never held up.
func New(ctx context.Context, c config.Traces, log *slog.Logger) (*Traces, error) {
	endpoint := firstSet(c.Endpoint, os.Getenv(EnvTracesEndpoint), os.Getenv(EnvEndpoint))
	if endpoint == "" || strings.EqualFold(os.Getenv(EnvSDKDisabled), "true") ||
		strings.EqualFold(strings.TrimSpace(os.Getenv(EnvTracesExporter)), "none") {
		return &Traces{tracer: dispatcher.PropagationTracer()}, nil
	}
	protocol := firstSet(c.Protocol, os.Getenv(EnvTracesProtocol), os.Getenv(EnvProtocol), config.ProtocolHTTP)
	exp, err := newExporter(ctx, c, protocol)
	if err != nil {
		return nil, err
	}
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithAttributes(attribute.String("service.name", ServiceName)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithBatcher(exp), sdktrace.WithResource(res)}
	if r := c.SampleRatio; r != nil {
		opts = append(opts, sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(*r))))
	} // else the SDK reads OTEL_TRACES_SAMPLER / _ARG (default: parent-based, always on)
	if log != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("trace export failed; the spans are dropped", "error", err)
		}))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	t := &Traces{tracer: tp.Tracer(InstrumentationName), tp: tp, endpoint: redact.URL(endpoint), protocol: protocol, log: log}
	if log != nil {
		log.Info("exporting traces", "endpoint", t.endpoint, "protocol", protocol)
	}
	return t, nil
}

// newExporter makes the OTLP exporter of protocol. The exporters read the
// environment themselves; what c sets is passed as options, which win.
func newExporter(ctx context.Context, c config.Traces, protocol string) (sdktrace.SpanExporter, error) {
	var u *url.URL
	if c.Endpoint != "" {
		var err error
		if u, err = url.Parse(c.Endpoint); err != nil || u.Host == "" {
			return nil, fmt.Errorf("telemetry: traces endpoint %q is not an absolute URL", redact.URL(c.Endpoint))
		}
	}
	switch protocol {
	case config.ProtocolHTTP:
		var opts []otlptracehttp.Option
		if u != nil {
			path := u.Path
			if path == "" || path == "/" {
				path = "/v1/traces"
			}
			opts = append(opts, otlptracehttp.WithEndpoint(u.Host), otlptracehttp.WithURLPath(path))
			if u.Scheme != "https" {
				opts = append(opts, otlptracehttp.WithInsecure())
			}
		}
		if len(c.Headers) > 0 {
			opts = append(opts, otlptracehttp.WithHeaders(c.Headers))
		}
		return otlptracehttp.New(ctx, opts...)
	case config.ProtocolGRPC:
		var opts []otlptracegrpc.Option
		if u != nil {
			opts = append(opts, otlptracegrpc.WithEndpoint(u.Host))
			if u.Scheme != "https" {
				opts = append(opts, otlptracegrpc.WithInsecure())
			}
		}
		if len(c.Headers) > 0 {
			opts = append(opts, otlptracegrpc.WithHeaders(c.Headers))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	return nil, fmt.Errorf("telemetry: OTLP protocol %q (from %s or %s): Ferry exports %s or %s",
		protocol, EnvTracesProtocol, EnvProtocol, config.ProtocolHTTP, config.ProtocolGRPC)
}

// Tracer is what spans are started with: an SDK tracer while exporting,
// else dispatcher.PropagationTracer.
func (t *Traces) Tracer() trace.Tracer { return t.tracer }

// Enabled reports whether spans are recorded and exported.
func (t *Traces) Enabled() bool { return t != nil && t.tp != nil }

// Endpoint is where spans go while exporting ("" otherwise), as the
// config or the environment gives it, any credentials in it masked.
func (t *Traces) Endpoint() string { return t.endpoint }

// Protocol is http/protobuf or grpc while exporting, else "".
func (t *Traces) Protocol() string { return t.protocol }

// Shutdown exports the spans still buffered and stops the exporter, within
// ctx. It is safe on nil and on Traces with export off, and idempotent.
func (t *Traces) Shutdown(ctx context.Context) error {
	if !t.Enabled() {
		return nil
	}
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("telemetry: flushing spans: %w", err)
	}
	return nil
}

// Close is Shutdown within timeout (none when it is not positive) for a
// server that stops: spans that cannot be sent in time are dropped with a
// warning in the log, never an error, so a receiver that is down does not
// fail a clean stop.
func (t *Traces) Close(timeout time.Duration) {
	if !t.Enabled() {
		return
	}
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	if err := t.Shutdown(ctx); err != nil && t.log != nil {
		t.log.Warn("spans not exported at shutdown", "error", err)
	}
}

// firstSet returns the first non-blank value.
func firstSet(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
