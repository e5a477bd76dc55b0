package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/wire"
)

// The Standard Webhooks test vector, as published in the reference
// libraries (standard-webhooks/standard-webhooks, libraries/go
// webhook_test.go TestWebhookSign, and the other languages' tests).
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecMsgID  = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = 1614265330
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func vecHeader(sig string) http.Header {
	h := http.Header{}
	h.Set(HeaderID, vecMsgID)
	h.Set(HeaderTimestamp, strconv.Itoa(vecTS))
	h.Set(HeaderSignature, sig)
	return h
}

func TestSignTestVector(t *testing.T) {
	got, err := Sign(vecSecret, vecMsgID, time.Unix(vecTS, 0), []byte(vecBody))
	if err != nil {
		t.Fatal(err)
	}
	if got != vecSig {
		t.Errorf("Sign = %q, want %q", got, vecSig)
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(vecTS, 0)
	otherSecret := "whsec_" + "c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1vbmU="
	tests := []struct {
		name    string
		secret  string
		header  http.Header
		body    string
		now     time.Time
		wantErr error
	}{
		{"TestVector", vecSecret, vecHeader(vecSig), vecBody, now, nil},
		{"MultipleSignatures", vecSecret, vecHeader("v1,bm9wZQ== v2,abc " + vecSig + " v1a,x"), vecBody, now, nil},
		{"WithinTolerance", vecSecret, vecHeader(vecSig), vecBody, now.Add(4 * time.Minute), nil},
		{"TimestampInFutureWithinTolerance", vecSecret, vecHeader(vecSig), vecBody, now.Add(-4 * time.Minute), nil},
		{"TamperedBody", vecSecret, vecHeader(vecSig), `{"test": 2432232315}`, now, ErrNoMatchingSignature},
		{"WrongSecret", otherSecret, vecHeader(vecSig), vecBody, now, ErrNoMatchingSignature},
		{"OldTimestamp", vecSecret, vecHeader(vecSig), vecBody, now.Add(6 * time.Minute), ErrTimestampOutOfRange},
		{"FutureTimestamp", vecSecret, vecHeader(vecSig), vecBody, now.Add(-6 * time.Minute), ErrTimestampOutOfRange},
		{"OnlyOtherVersions", vecSecret, vecHeader("v2" + vecSig[2:]), vecBody, now, ErrNoMatchingSignature},
		{"BadSecret", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", vecHeader(vecSig), vecBody, now, ErrInvalidSecret},
		{"MissingSignature", vecSecret, func() http.Header { h := vecHeader(vecSig); h.Del(HeaderSignature); return h }(), vecBody, now, ErrMissingHeaders},
		{"MissingID", vecSecret, func() http.Header { h := vecHeader(vecSig); h.Del(HeaderID); return h }(), vecBody, now, ErrMissingHeaders},
		{"BadTimestamp", vecSecret, func() http.Header { h := vecHeader(vecSig); h.Set(HeaderTimestamp, "1614265330.0"); return h }(), vecBody, now, ErrInvalidTimestamp},
		{"OtherID", vecSecret, func() http.Header { h := vecHeader(vecSig); h.Set(HeaderID, "msg_other"); return h }(), vecBody, now, ErrNoMatchingSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.header, []byte(tt.body), tt.now, 0)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no secret":     {URL: "http://h/"},
		"no prefix":     {URL: "http://h/", Secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		"not base64":    {URL: "http://h/", Secret: "whsec_%%%"},
		"empty key":     {URL: "http://h/", Secret: "whsec_"},
		"relative URL":  {URL: "/hook", Secret: vecSecret},
		"negative time": {URL: "http://h/", Secret: vecSecret, Timeout: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

func testOutcome() *wire.Outcome {
	return &wire.Outcome{
		Type: wire.TypeSucceeded, ID: "task-1", Tenant: "demo", Function: "echo",
		Status: "succeeded", Attempts: 2, Output: json.RawMessage(`{"ok":true}`),
		Source: "/ferry/demo/echo", Hops: 3, Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC),
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
}

type received struct {
	header http.Header
	body   []byte
	err    error // verification result
}

func TestDeliverSignedAndVerified(t *testing.T) {
	got := make(chan received, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := Verify(vecSecret, r.Header, body, time.Now(), time.Minute)
		got <- received{r.Header.Clone(), body, err}
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		}
	}))
	defer srv.Close()

	s, err := New(Config{URL: srv.URL, Secret: vecSecret})
	if err != nil {
		t.Fatal(err)
	}
	o := testOutcome()
	for range 2 {
		if err := s.Deliver(context.Background(), o); err != nil {
			t.Fatalf("Deliver: %v", err)
		}
	}
	first, second := <-got, <-got
	for _, r := range []received{first, second} {
		if r.err != nil {
			t.Errorf("receiver could not verify: %v", r.err)
		}
		for k, v := range map[string]string{
			"Content-Type": "application/json", "User-Agent": UserAgent, "Ferry-Hops": "3",
			"webhook-id": "msg_task-1", "traceparent": o.TraceParent,
		} {
			if r.header.Get(k) != v {
				t.Errorf("%s = %q, want %q", k, r.header.Get(k), v)
			}
		}
		var back wire.Outcome
		if err := json.Unmarshal(r.body, &back); err != nil || back.ID != o.ID || back.Hops != 3 || string(back.Output) != `{"ok":true}` {
			t.Errorf("body %s does not decode to the outcome: %v", r.body, err)
		}
	}
	if first.header.Get(HeaderID) != second.header.Get(HeaderID) {
		t.Error("webhook-id differs between retries of one outcome")
	}
}

func TestDeliverFailures(t *testing.T) {
	var targetCalled atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { targetCalled.Store(true) }))
	defer target.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/500":
			http.Error(w, "receiver exploded", http.StatusInternalServerError)
		case "/302":
			http.Redirect(w, r, target.URL, http.StatusFound)
		}
	}))
	defer srv.Close()

	for _, tt := range []struct {
		path    string
		status  int
		excerpt string
	}{
		{"/500", 500, "receiver exploded"},
		{"/302", 302, ""},
	} {
		for name, client := range map[string]*http.Client{"DefaultClient": nil, "CustomClient": {}} {
			s, err := New(Config{URL: srv.URL + tt.path, Secret: vecSecret, Client: client})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Deliver(context.Background(), testOutcome())
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tt.status || !strings.Contains(err.Error(), strconv.Itoa(tt.status)) || !strings.Contains(se.Body, tt.excerpt) {
				t.Errorf("%s %s: Deliver = %v, want a StatusError %d naming %q", name, tt.path, err, tt.status, tt.excerpt)
			}
		}
	}
	if targetCalled.Load() {
		t.Error("the redirect target was called")
	}
}

func TestDeliverTransportError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	s, err := New(Config{URL: url + "/hook?token=tok-secret", Secret: vecSecret})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Deliver(context.Background(), testOutcome())
	if err == nil {
		t.Fatal("Deliver to a closed server succeeded")
	}
	// The error is kept with the task's delivery: no token in it.
	if strings.Contains(err.Error(), "tok-secret") || !strings.Contains(err.Error(), "/hook") {
		t.Errorf("error %q: want the URL without its token", err)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(vecSecret, vecMsgID, strconv.Itoa(vecTS), vecSig, []byte(vecBody))
	f.Add(vecSecret, "", "", "", []byte(nil))
	f.Add("whsec_", "id", "-9223372036854775808", "v1, v1,== v1,,", []byte("{}"))
	f.Add(vecSecret, vecMsgID, "9223372036854775807", "v1"+strings.Repeat(" ", 3)+"v1,AAAA", []byte(vecBody))
	now := time.Unix(vecTS, 0)
	f.Fuzz(func(t *testing.T, secret, id, ts, sig string, body []byte) {
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderSignature, sig)
		err := Verify(secret, h, body, now, time.Minute)
		if err == nil {
			// Anything accepted has a valid secret and a fresh timestamp.
			n, perr := strconv.ParseInt(ts, 10, 64)
			if _, serr := Sign(secret, id, now, body); perr != nil || serr != nil || n < vecTS-60 || n > vecTS+60 {
				t.Errorf("Verify accepted secret %q ts %q sig %q", secret, ts, sig)
			}
		}
	})
}
