// Package otlptest is a real OTLP/HTTP trace receiver for tests: an
// httptest server that accepts POST /v1/traces (protobuf, optionally
// gzip), decodes each export request with the OTLP protobuf types and
// keeps the spans, flattened, for the test to look at.
package otlptest

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Span is one received span, with ids in lower-case hex.
type Span struct {
	Name    string
	Kind    tracepb.Span_SpanKind
	TraceID string
	SpanID  string
	// ParentSpanID is "" for a root span.
	ParentSpanID string
	// Attributes and Resource hold string, int64, float64, bool or
	// []any values.
	Attributes map[string]any
	Resource   map[string]any
	Links      []Link
	Status     tracepb.Status_StatusCode
	Start, End time.Time
}

// Link is a span link.
type Link struct {
	TraceID, SpanID string
}

// TraceParent is the W3C traceparent naming the span (sampled).
func (s Span) TraceParent() string { return "00-" + s.TraceID + "-" + s.SpanID + "-01" }

func (s Span) String() string {
	return fmt.Sprintf("%s(%s trace=%s span=%s parent=%s %v)", s.Name, s.Kind, s.TraceID, s.SpanID, s.ParentSpanID, s.Attributes)
}

// Receiver is a running OTLP/HTTP receiver.
type Receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	spans    []Span
	requests int
	invalid  []string
}

// New starts a Receiver; it is closed when the test ends, and a request it
// could not decode fails the test.
func New(t testing.TB) *Receiver {
	t.Helper()
	r := &Receiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.srv.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, e := range r.invalid {
			t.Errorf("OTLP receiver got an invalid request: %s", e)
		}
	})
	return r
}

// URL is the receiver's base URL (http://127.0.0.1:PORT), what
// OTEL_EXPORTER_OTLP_ENDPOINT takes; spans are posted to URL()+"/v1/traces".
func (r *Receiver) URL() string { return r.srv.URL }

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/v1/traces" {
		r.fail(fmt.Sprintf("%s %s", req.Method, req.URL.Path))
		http.NotFound(w, req)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			r.fail("gzip: " + err.Error())
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		r.fail("reading the body: " + err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if ct := req.Header.Get("Content-Type"); ct != "application/x-protobuf" {
		r.fail("content type " + ct)
		http.Error(w, "want application/x-protobuf", http.StatusUnsupportedMediaType)
		return
	}
	var er collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &er); err != nil {
		r.fail("protobuf: " + err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var got []Span
	for _, rs := range er.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				sp := Span{
					Name: s.GetName(), Kind: s.GetKind(),
					TraceID: hex.EncodeToString(s.GetTraceId()), SpanID: hex.EncodeToString(s.GetSpanId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()),
					Attributes:   attrs(s.GetAttributes()), Resource: res, Status: s.GetStatus().GetCode(),
					Start: time.Unix(0, int64(s.GetStartTimeUnixNano())), End: time.Unix(0, int64(s.GetEndTimeUnixNano())),
				}
				for _, l := range s.GetLinks() {
					sp.Links = append(sp.Links, Link{TraceID: hex.EncodeToString(l.GetTraceId()), SpanID: hex.EncodeToString(l.GetSpanId())})
				}
				got = append(got, sp)
			}
		}
	}
	r.mu.Lock()
	r.spans = append(r.spans, got...)
	r.requests++
	r.mu.Unlock()
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (r *Receiver) fail(what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.invalid = append(r.invalid, what)
}

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Requests counts the export requests received.
func (r *Receiver) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

// WaitFor polls the received spans every 10 ms until find returns true,
// and fails the test after timeout, listing what was received.
func (r *Receiver) WaitFor(t testing.TB, timeout time.Duration, what string, find func([]Span) bool) []Span {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		spans := r.Spans()
		if find(spans) {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; received %d spans:\n%s", timeout, what, len(spans), Dump(spans))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Dump renders spans one a line.
func Dump(spans []Span) string {
	var b strings.Builder
	for _, s := range spans {
		b.WriteString("  " + s.String() + "\n")
	}
	return b.String()
}

// Named returns the spans called name whose attribute key equals value
// (any value when key is "").
func Named(spans []Span, name, key string, value any) []Span {
	var out []Span
	for _, s := range spans {
		if s.Name == name && (key == "" || s.Attributes[key] == value) {
			out = append(out, s)
		}
	}
	return out
}

func attrs(kvs []*commonpb.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = value(kv.GetValue())
	}
	return m
}

func value(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		return x.DoubleValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_ArrayValue:
		var out []any
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, value(e))
		}
		return out
	}
	return nil
}
