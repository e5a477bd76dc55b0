package ferrytest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/sinks/webhook"
	"github.com/ferrydev/ferry/wire"
)

// Receiver is a webhook destination that verifies every request's Standard
// Webhooks signature and records the verified ones; a request with a bad
// signature or a body that is not an outcome is refused and fails the test
// when the test ends.
type Receiver struct {
	t      testing.TB
	srv    *httptest.Server
	Secret string

	mu         sync.Mutex
	deliveries []Delivery
	invalid    []string
	refuse     int // how many verified requests to answer 503
}

// Delivery is one verified webhook request.
type Delivery struct {
	WebhookID string         // the webhook-id header
	Hops      string         // the Ferry-Hops header
	Raw       []byte         // the body
	Body      map[string]any // the body, decoded
	Outcome   wire.Outcome   // the body, decoded
	Refused   bool           // answered 503 on purpose (RefuseFirst)

	// TraceParent is the traceparent header.
	TraceParent string
}

// NewReceiver starts a Receiver with a random secret.
func NewReceiver(t testing.TB) *Receiver {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	r := &Receiver{t: t, Secret: "whsec_" + base64.StdEncoding.EncodeToString(key)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.srv.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, e := range r.invalid {
			t.Errorf("webhook receiver got an invalid request: %s", e)
		}
	})
	return r
}

// RefuseFirst makes the receiver answer its next n verified requests with
// 503 (recording them, with Refused set) before it accepts again.
func (r *Receiver) RefuseFirst(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refuse = n
}

// URL is the receiver's URL.
func (r *Receiver) URL() string { return r.srv.URL + "/hook" }

// YAML is the destination entry for a config, e.g. in `on_failure: [ ... ]`.
func (r *Receiver) YAML() string {
	return `{ webhook: { url: "` + r.URL() + `", secret: "` + r.Secret + `", retry: { initial_interval: 50ms, max_interval: 1s } } }`
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	d := Delivery{WebhookID: req.Header.Get(webhook.HeaderID), Hops: req.Header.Get("Ferry-Hops"), Raw: body,
		TraceParent: req.Header.Get(wire.HeaderTraceParent)}
	var invalid string
	status := http.StatusUnauthorized
	if err := webhook.Verify(r.Secret, req.Header, body, time.Now(), 5*time.Minute); err != nil {
		invalid = err.Error()
	} else if err := decode(body, &d); err != nil {
		invalid, status = "body is not an outcome: "+err.Error()+": "+strconv.Quote(string(body)), http.StatusBadRequest
	}
	r.mu.Lock()
	if invalid != "" {
		r.invalid = append(r.invalid, invalid)
	} else {
		status = http.StatusNoContent
		if r.refuse > 0 {
			r.refuse--
			d.Refused, status = true, http.StatusServiceUnavailable
		}
		r.deliveries = append(r.deliveries, d)
	}
	r.mu.Unlock()
	w.WriteHeader(status)
}

// decode decodes an outcome body into d.Body and d.Outcome.
func decode(body []byte, d *Delivery) error {
	if err := json.Unmarshal(body, &d.Body); err != nil {
		return err
	}
	return json.Unmarshal(body, &d.Outcome)
}

// Deliveries returns the verified requests whose outcome is that of task
// id (all of them when id is empty), in arrival order.
func (r *Receiver) Deliveries(id string) []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Delivery
	for _, d := range r.deliveries {
		if id == "" || d.Outcome.ID == id {
			out = append(out, d)
		}
	}
	return out
}

// Outcomes returns the outcomes accepted so far (not those refused).
func (r *Receiver) Outcomes() []wire.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []wire.Outcome
	for _, d := range r.deliveries {
		if !d.Refused {
			out = append(out, d.Outcome)
		}
	}
	return out
}
