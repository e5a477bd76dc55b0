package backend

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"

	"go.opentelemetry.io/otel/attribute"

	"github.com/ferrydev/ferry/dispatcher"
)

var (
	_ dispatcher.Describer = (*HTTP)(nil)
	_ dispatcher.Describer = (*Exec)(nil)
)

// BackendKind is "http": its spans are named ferry.backend.http.
func (h *HTTP) BackendKind() string { return "http" }

// SpanAttributes describe the function's endpoint with the OpenTelemetry
// HTTP client attributes: http.request.method, url.full (without user
// info or query, which may carry credentials), url.scheme, server.address
// and server.port. The dispatcher adds http.response.status_code.
func (h *HTTP) SpanAttributes() []attribute.KeyValue {
	u, err := url.Parse(h.url)
	if err != nil {
		return []attribute.KeyValue{attribute.String("http.request.method", http.MethodPost)}
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if u.Scheme == "https" {
			port = "443"
		}
	}
	p, _ := strconv.Atoi(port)
	full := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return []attribute.KeyValue{
		attribute.String("http.request.method", http.MethodPost),
		attribute.String("url.full", full.String()),
		attribute.String("url.scheme", u.Scheme),
		attribute.String("server.address", u.Hostname()),
		attribute.Int("server.port", p),
	}
}

// BackendKind is "exec": its spans are named ferry.backend.exec.
func (e *Exec) BackendKind() string { return "exec" }

// SpanAttributes name the program (process.executable.name); its
// arguments and environment stay out of traces.
func (e *Exec) SpanAttributes() []attribute.KeyValue {
	return []attribute.KeyValue{attribute.String("process.executable.name", filepath.Base(e.path))}
}
