package chaos

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"time"
)

// Behaviour decides how the backend answers attempt try (1 for the first)
// of seq: a status (0 or 200: success), how long to wait first, and a
// Retry-After value in seconds (0: none).
type Behaviour func(seq, try int) (status int, delay time.Duration, retryAfter int)

// Backend is the function every row's Ferry calls: an HTTP server that
// reads {"seq": n} from the body, records the invocation in its Ledger
// and answers as its Behaviour says.
type Backend struct {
	Ledger *Ledger
	srv    *httptest.Server

	mu        sync.Mutex
	behaviour Behaviour
	// stop is closed to release hung requests when the backend closes.
	stop chan struct{}
}

// NewBackend starts a Backend recording into l; behave may be nil (every
// call succeeds at once).
func NewBackend(l *Ledger, behave Behaviour) *Backend {
	b := &Backend{Ledger: l, behaviour: behave, stop: make(chan struct{})}
	b.srv = httptest.NewServer(http.HandlerFunc(b.serve))
	return b
}

// URL is the function's URL.
func (b *Backend) URL() string { return b.srv.URL + "/fn" }

// SetBehaviour replaces the behaviour for the calls that follow.
func (b *Backend) SetBehaviour(behave Behaviour) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.behaviour = behave
}

// Close releases hung calls and stops the server.
func (b *Backend) Close() {
	close(b.stop)
	b.srv.CloseClientConnections()
	b.srv.Close()
}

func (b *Backend) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var p struct {
		Seq *int `json:"seq"`
	}
	if err := json.Unmarshal(body, &p); err != nil || p.Seq == nil {
		// Unexpected: counted as a seq never accepted.
		b.Ledger.Seen(-1)
		http.Error(w, "no seq", http.StatusBadRequest)
		return
	}
	try := b.Ledger.Seen(*p.Seq)
	b.mu.Lock()
	behave := b.behaviour
	b.mu.Unlock()
	status, delay := http.StatusOK, time.Duration(0)
	retryAfter := 0
	if behave != nil {
		status, delay, retryAfter = behave(*p.Seq, try)
		if status == 0 {
			status = http.StatusOK
		}
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return // the caller gave up (a hang past its timeout)
		case <-b.stop:
			t.Stop()
			return
		}
	}
	if status == http.StatusOK {
		b.Ledger.Deliver(*p.Seq)
	}
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	w.WriteHeader(status)
}
