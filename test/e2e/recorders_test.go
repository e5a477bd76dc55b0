package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"
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
	// Done, when set, runs when the handler returns (after Hold, or once
	// the client went away); a small answer is not yet flushed then.
	Done func()
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
	if rep.Done != nil {
		defer rep.Done()
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

// peak returns the most calls whose [Start, End] overlap, among those keep
// selects. End is taken before the answer is written, so overlaps are
// under- rather than over-counted.
func peak(calls []call, keep func(call) bool) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, c := range calls {
		if keep(c) && c.Completed {
			edges = append(edges, edge{c.Start, +1}, edge{c.End, -1})
		}
	}
	sort.Slice(edges, func(i, j int) bool {
		if edges[i].at.Equal(edges[j].at) {
			return edges[i].delta < edges[j].delta // an end before a start
		}
		return edges[i].at.Before(edges[j].at)
	})
	n, top := 0, 0
	for _, e := range edges {
		n += e.delta
		top = max(top, n)
	}
	return top
}
