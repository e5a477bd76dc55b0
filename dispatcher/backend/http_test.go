package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/wire"
)

func testInvocation() *dispatcher.Invocation {
	return &dispatcher.Invocation{
		ID:          "task-123",
		Tenant:      "demo",
		Function:    "echo",
		Source:      "/ferry/demo/echo",
		Type:        "dev.ferry.task",
		Time:        time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC),
		Payload:     []byte(`{"hello":"world"}`),
		ContentType: "application/json",
		Headers: map[string]string{
			"X-Order":        "42",
			"Ce-Id":          "spoofed",
			"Ferry-Hops":     "0",
			"Content-Type":   "text/evil",
			"Traceparent":    "spoofed",
			"Connection":     "close",
			"X-Bad\r\nValue": "x",
		},
		Hops:        3,
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		Attempt:     2,
	}
}

func newHTTP(t *testing.T, cfg HTTPConfig) *HTTP {
	t.Helper()
	h, err := NewHTTP(cfg)
	if err != nil {
		t.Fatalf("NewHTTP: %v", err)
	}
	return h
}

func classify(t *testing.T, err error) dispatcher.Classified {
	t.Helper()
	var e *dispatcher.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *dispatcher.Error", err, err)
	}
	return dispatcher.Classify(err)
}

func TestHTTPRequestIsBinaryCloudEvent(t *testing.T) {
	type seen struct {
		header http.Header
		body   []byte
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Header.Clone(), b}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("done"))
	}))
	defer srv.Close()

	h := newHTTP(t, HTTPConfig{URL: srv.URL, Headers: map[string]string{"Authorization": "Bearer op", "X-Order": "config-wins"}})
	res, err := h.Invoke(context.Background(), testInvocation())
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if string(res.Output) != "done" || res.ContentType != "text/plain" || res.StatusCode != 200 {
		t.Errorf("result = %q %q %d, want done text/plain 200", res.Output, res.ContentType, res.StatusCode)
	}
	s := <-got
	want := map[string]string{
		"ce-specversion": "1.0",
		"ce-id":          "task-123",
		"ce-source":      "/ferry/demo/echo",
		"ce-type":        "dev.ferry.task",
		"ce-time":        "2024-05-06T07:08:09Z",
		"ce-ferryhops":   "4",
		"ferry-hops":     "4",
		"ferry-attempt":  "2",
		"traceparent":    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"content-type":   "application/json",
		"authorization":  "Bearer op",
		"x-order":        "config-wins",
	}
	for k, v := range want {
		if vals := s.header.Values(k); len(vals) != 1 || vals[0] != v {
			t.Errorf("header %s = %q, want [%q]", k, vals, v)
		}
	}
	if c := s.header.Get("Connection"); c == "close" {
		t.Errorf("message header Connection: close was forwarded")
	}
	if !bytes.Equal(s.body, testInvocation().Payload) {
		t.Errorf("body = %q, want %q", s.body, testInvocation().Payload)
	}

	// The request decodes as a CloudEvent with the sdk itself.
	req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(s.body))
	req.Header = s.header
	ev, err := cehttp.NewEventFromHTTPRequest(req)
	if err != nil {
		t.Fatalf("decode CloudEvent: %v", err)
	}
	if ev.ID() != "task-123" || fmt.Sprint(ev.Extensions()[wire.ExtensionHops]) != "4" {
		t.Errorf("decoded event id %q ferryhops %v (%T)", ev.ID(), ev.Extensions()[wire.ExtensionHops], ev.Extensions()[wire.ExtensionHops])
	}
}

func TestHTTPDefaults(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	defer srv.Close()

	h := newHTTP(t, HTTPConfig{URL: srv.URL})
	inv := &dispatcher.Invocation{ID: "m1", Tenant: "t", Function: "f", Payload: []byte{0, 1, 2}, Attempt: 1}
	if _, err := h.Invoke(context.Background(), inv); err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	hd := <-got
	for k, v := range map[string]string{
		"Content-Type": DefaultContentType, "Ce-Ferryhops": "1", "Ferry-Hops": "1",
		"Ce-Source": "/ferry/t/f", "Ce-Type": DefaultEventType, "Traceparent": "",
	} {
		if hd.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, hd.Get(k), v)
		}
	}
	if hd.Get("Ce-Time") == "" {
		t.Error("Ce-Time missing")
	}
}

func TestHTTPStatusClassification(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code := r.URL.Query().Get("code")
		if code == "429" || code == "503" {
			w.Header().Set("Retry-After", "2")
		}
		status, _ := strconv.Atoi(code)
		w.WriteHeader(status)
		_, _ = w.Write([]byte("body of " + code))
	}))
	defer srv.Close()

	tests := []struct {
		code       int
		ok         bool
		permanent  bool
		retryAfter time.Duration
	}{
		{200, true, false, 0},
		{201, true, false, 0},
		{204, true, false, 0},
		{302, false, true, 0},
		{400, false, true, 0},
		{404, false, true, 0},
		{408, false, false, 0},
		{429, false, false, 2 * time.Second},
		{500, false, false, 0},
		{503, false, false, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run("Status"+strconv.Itoa(tt.code), func(t *testing.T) {
			h := newHTTP(t, HTTPConfig{URL: srv.URL + "/?code=" + strconv.Itoa(tt.code)})
			res, err := h.Invoke(context.Background(), testInvocation())
			if tt.ok {
				if err != nil || res.StatusCode != tt.code {
					t.Fatalf("Invoke = %+v, %v; want status %d", res, err, tt.code)
				}
				return
			}
			c := classify(t, err)
			if c.Code != "http_"+strconv.Itoa(tt.code) || c.Permanent != tt.permanent || c.StatusCode != tt.code || c.RetryAfter != tt.retryAfter {
				t.Errorf("classified %+v; want code http_%d permanent %v status %d retry-after %s", c, tt.code, tt.permanent, tt.code, tt.retryAfter)
			}
			if !strings.Contains(c.Message, "body of "+strconv.Itoa(tt.code)) {
				t.Errorf("message %q lacks the body excerpt", c.Message)
			}
		})
	}
}

func TestHTTPReusesConnections(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Query().Get("fail") == "1" {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(bytes.Repeat([]byte("e"), 4096))
			return
		}
		_, _ = w.Write(bytes.Repeat([]byte("o"), 8192))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	ok := newHTTP(t, HTTPConfig{URL: srv.URL})
	for i := range 50 {
		if _, err := ok.Invoke(context.Background(), testInvocation()); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("50 sequential calls opened %d connections, want 1", n)
	}

	conns.Store(0)
	failing := newHTTP(t, HTTPConfig{URL: srv.URL + "/?fail=1"})
	for i := range 50 {
		if _, err := failing.Invoke(context.Background(), testInvocation()); err == nil {
			t.Fatalf("call %d: want an error", i)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("50 sequential failing calls opened %d connections, want 1", n)
	}
}

func TestHTTPTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	h := newHTTP(t, HTTPConfig{URL: srv.URL, Timeout: 100 * time.Millisecond})
	start := time.Now()
	_, err := h.Invoke(context.Background(), testInvocation())
	c := classify(t, err)
	if c.Code != "timeout" || c.Permanent {
		t.Errorf("classified %+v, want retryable timeout", c)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %s", d)
	}
}

func TestHTTPCallerCancel(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	h := newHTTP(t, HTTPConfig{URL: srv.URL})
	_, err := h.Invoke(ctx, testInvocation())
	var e *dispatcher.Error
	if !errors.Is(err, context.Canceled) || errors.As(err, &e) {
		t.Errorf("err = %v, want a wrapped context.Canceled, not classified", err)
	}
}

func TestHTTPConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()

	h := newHTTP(t, HTTPConfig{URL: "http://fn:pw-secret@" + addr + "/run?token=tok-secret"})
	_, err = h.Invoke(context.Background(), testInvocation())
	if c := classify(t, err); c.Code != "connection" || c.Permanent {
		t.Errorf("classified %+v, want retryable connection", c)
	}
	// The error is kept with the task (last_error): no credential in it.
	if msg := err.Error(); strings.Contains(msg, "secret") || !strings.Contains(msg, addr+"/run") {
		t.Errorf("error %q: want the endpoint without its password and token", msg)
	}
}

func TestHTTPOutputTooLarge(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size := MaxOutput
		if r.URL.Query().Get("over") == "1" {
			size++
		}
		_, _ = w.Write(bytes.Repeat([]byte("x"), size))
	}))
	defer srv.Close()

	res, err := newHTTP(t, HTTPConfig{URL: srv.URL}).Invoke(context.Background(), testInvocation())
	if err != nil || len(res.Output) != MaxOutput {
		t.Fatalf("exactly MaxOutput: err %v", err)
	}
	_, err = newHTTP(t, HTTPConfig{URL: srv.URL + "/?over=1"}).Invoke(context.Background(), testInvocation())
	if c := classify(t, err); c.Code != "output_too_large" || !c.Permanent || c.StatusCode != 200 {
		t.Errorf("classified %+v, want permanent output_too_large", c)
	}
}

func TestHTTPRedirectNotFollowed(t *testing.T) {
	var followed atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Store(true) }))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer srv.Close()

	_, err := newHTTP(t, HTTPConfig{URL: srv.URL, Client: &http.Client{}}).Invoke(context.Background(), testInvocation())
	if c := classify(t, err); c.Code != "http_307" || !c.Permanent {
		t.Errorf("classified %+v, want permanent http_307", c)
	}
	if followed.Load() {
		t.Error("redirect was followed")
	}
}

func TestNewHTTPValidates(t *testing.T) {
	for name, cfg := range map[string]HTTPConfig{
		"empty URL":       {},
		"relative URL":    {URL: "/fn"},
		"ftp URL":         {URL: "ftp://host/"},
		"reserved header": {URL: "http://h/", Headers: map[string]string{"Ferry-Hops": "0"}},
		"ce header":       {URL: "http://h/", Headers: map[string]string{"ce-id": "x"}},
		"bad header":      {URL: "http://h/", Headers: map[string]string{"X-A": "a\nb"}},
		"negative":        {URL: "http://h/", Timeout: -time.Second},
	} {
		if _, err := NewHTTP(cfg); err == nil {
			t.Errorf("%s: NewHTTP accepted %+v", name, cfg)
		}
	}
}
