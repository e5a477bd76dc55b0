package apispec

import (
	"bytes"
	"context"
	"io"
	"net/http"
)

// Transport is an http.RoundTripper that sends each request with Base and
// checks the exchange with Spec, handing every mismatch to Report. The
// caller gets the response as Base answered it (its body read in full and
// replayed); a request that gets no response is not checked.
type Transport struct {
	Base   http.RoundTripper // nil: http.DefaultTransport
	Spec   *Spec
	Report func(req *http.Request, err error)
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		// Sent as the caller made it: a request without a length stays
		// chunked.
		out := req.Clone(req.Context())
		out.Body = io.NopCloser(bytes.NewReader(b))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		req = out
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := t.Spec.Check(Exchange{
		Request: req, RequestBody: reqBody, Response: resp, ResponseBody: body,
		Malformed: isMalformed(req.Context()),
	}); err != nil && t.Report != nil {
		t.Report(req, err)
	}
	return resp, nil
}

type malformedKey struct{}

// Malformed marks the requests made with ctx as bad on purpose: their
// exchanges are checked with Exchange.Malformed set.
func Malformed(ctx context.Context) context.Context {
	return context.WithValue(ctx, malformedKey{}, true)
}

func isMalformed(ctx context.Context) bool {
	b, _ := ctx.Value(malformedKey{}).(bool)
	return b
}
