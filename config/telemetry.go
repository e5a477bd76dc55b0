package config

import (
	"math"
	"net/url"
	"strings"
)

// Trace export protocols (telemetry.traces.protocol, or the standard
// OTEL_EXPORTER_OTLP_PROTOCOL).
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// Telemetry configures what Ferry exports about itself besides /metrics.
type Telemetry struct {
	// Traces configures OTLP trace export.
	Traces Traces `yaml:"traces"`
}

// Traces configures the export of Ferry's spans over OTLP. Export is off
// unless an endpoint is set, here or in OTEL_EXPORTER_OTLP_ENDPOINT /
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; while it is off Ferry records no
// spans and only passes trace context (traceparent) on. Each key set here
// wins over its standard OTEL_* environment variable; a key left out
// falls back to that variable, then to the OpenTelemetry default.
type Traces struct {
	// Endpoint is the OTLP receiver's URL, http:// (no TLS) or https://:
	// e.g. http://127.0.0.1:4318 for OTLP/HTTP, http://127.0.0.1:4317 for
	// gRPC. For http/protobuf a URL without a path gets /v1/traces; a URL
	// with one is used as it is. Defaults to none (the environment's, if
	// any).
	Endpoint string `yaml:"endpoint"`
	// Protocol is http/protobuf or grpc. Defaults to
	// OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, OTEL_EXPORTER_OTLP_PROTOCOL, then
	// http/protobuf.
	Protocol string `yaml:"protocol"`
	// SampleRatio is the share of new traces recorded, from 0 to 1; a
	// trace that arrives with a traceparent follows its sampled flag
	// (parent-based sampling). Defaults to OTEL_TRACES_SAMPLER and
	// OTEL_TRACES_SAMPLER_ARG, then 1 (every trace).
	SampleRatio *float64 `yaml:"sample_ratio"`
	// Headers are sent with every export (e.g. an API key of a hosted
	// backend). Defaults to OTEL_EXPORTER_OTLP_TRACES_HEADERS /
	// OTEL_EXPORTER_OTLP_HEADERS.
	Headers map[string]string `yaml:"headers"`
}

// validate checks the telemetry section. Every key is optional; none has
// a default of its own (the environment fills what is left out).
func (t *Telemetry) validate(v *validator) {
	const p = "telemetry.traces"
	tr := &t.Traces
	if tr.Endpoint != "" {
		u, err := url.Parse(tr.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.report(p+".endpoint", nil, "must be an absolute http:// or https:// URL, e.g. http://127.0.0.1:4318")
		}
	}
	if tr.Protocol != "" {
		v.oneOf(p+".protocol", tr.Protocol, ProtocolHTTP, ProtocolGRPC)
	}
	if r := tr.SampleRatio; r != nil && (!(*r >= 0 && *r <= 1) || math.IsNaN(*r)) {
		v.report(p+".sample_ratio", nil, "must be from 0 to 1, got %v", *r)
	}
	for k := range tr.Headers {
		if k == "" || strings.ContainsAny(k, " \t\r\n:") {
			// The value may be a secret: name the key only.
			v.report(p+".headers."+k, nil, "%q is not a valid header name", k)
		}
	}
}
