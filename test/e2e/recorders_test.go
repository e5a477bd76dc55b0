package e2e

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
)

// call is one request the recording backend received.
type call struct {
	ID          string // ce-id
	Attempt     string // Ferry-Attempt
	Hops        string // Ferry-Hops
	TraceParent string
	Header      http.Header
	Body        []byte
	Start       time.Time // when the request arrived
	End         time.Time // when the answer was written (zero if never)
	Completed   bool      // the handler answered (not cut short by the client)
}

// reply is what the backend answers to one call.
type reply struct {
	Status int
	Header map[string]string
	Body   []byte
	// Hold delays the answer (simulated work); a client that goes away
	// meanwhile leaves the call not Completed.
	Hold time.Duration
}

// backend is a recording HTTP function. Behave chooses the answer of each
// call from the call and how many times its ce-id was seen (1 for the
// first); nil echoes the body with the same content type.
type backend struct {
	srv    *httptest.Server
	mu     sync.Mutex
	calls  []*call
	behave func(c *call, n int) reply
}

func newBackend(t *testing.T, behave func(c *call, n int) reply) *backend {
	t.Helper()
	b := &backend{behave: behave}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) URL() string { return b.srv.URL + "/fn" }

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := &call{
		ID: r.Header.Get("ce-id"), Attempt: r.Header.Get("Ferry-Attempt"), Hops: r.Header.Get("Ferry-Hops"),
		TraceParent: r.Header.Get("traceparent"), Header: r.Header.Clone(), Body: body, Start: time.Now(),
	}
	b.mu.Lock()
	n := 1
	for _, o := range b.calls {
		if o.ID == c.ID {
			n++
		}
	}
	b.calls = append(b.calls, c)
	b.mu.Unlock()

	rep := reply{Status: http.StatusOK, Body: body, Header: map[string]string{"Content-Type": r.Header.Get("Content-Type")}}
	if b.behave != nil {
		rep = b.behave(c, n)
	}
	if rep.Hold > 0 {
		timer := time.NewTimer(rep.Hold)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-r.Context().Done():
			return
		}
	}
	for k, v := range rep.Header {
		w.Header().Set(k, v)
	}
	b.mu.Lock()
	c.End, c.Completed = time.Now(), true
	b.mu.Unlock()
	w.WriteHeader(rep.Status)
	_, _ = w.Write(rep.Body)
}

// echo is the default answer: 200 with the call's body and content type.
func echo(c *call) reply {
	return reply{Status: http.StatusOK, Body: c.Body, Header: map[string]string{"Content-Type": c.Header.Get("Content-Type")}}
}

// callsFor returns copies of the calls with that ce-id, in arrival order.
func (b *backend) callsFor(id string) []call {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []call
	for _, c := range b.calls {
		if c.ID == id {
			out = append(out, *c)
		}
	}
	return out
}

// all returns copies of every call.
func (b *backend) all() []call {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]call, len(b.calls))
	for i, c := range b.calls {
		out[i] = *c
	}
	return out
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.calls)
}

// hook is one verified webhook delivery.
type hook struct {
	WebhookID string
	Hops      string // Ferry-Hops header
	Body      map[string]any
	Raw       []byte
}

// receiver is a webhook endpoint that verifies every request against its
// secret and records the verified ones; a bad signature is answered 401
// and counted in invalid.
type receiver struct {
	srv     *httptest.Server
	secret  string
	mu      sync.Mutex
	hooks   []hook
	invalid []string
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	rc := &receiver{secret: "whsec_" + base64.StdEncoding.EncodeToString(key)}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(func() {
		rc.srv.Close()
		rc.mu.Lock()
		defer rc.mu.Unlock()
		for _, e := range rc.invalid {
			t.Errorf("webhook receiver got an invalid request: %s", e)
		}
	})
	return rc
}

func (rc *receiver) URL() string { return rc.srv.URL + "/hook" }

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := webhook.Verify(rc.secret, r.Header, body, time.Now(), 0); err != nil {
		rc.mu.Lock()
		rc.invalid = append(rc.invalid, err.Error())
		rc.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		rc.mu.Lock()
		rc.invalid = append(rc.invalid, "body is not a JSON object: "+strconv.Quote(string(body)))
		rc.mu.Unlock()
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.hooks = append(rc.hooks, hook{WebhookID: r.Header.Get("webhook-id"), Hops: r.Header.Get("Ferry-Hops"), Body: m, Raw: body})
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// hooksFor returns the verified deliveries whose body names that task id.
func (rc *receiver) hooksFor(id string) []hook {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []hook
	for _, h := range rc.hooks {
		if h.Body["id"] == id {
			out = append(out, h)
		}
	}
	return out
}
