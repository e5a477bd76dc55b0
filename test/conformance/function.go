package conformance

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// payload is the body of every produced message.
type payload struct {
	Seq int    `json:"seq"`
	Key string `json:"key"`
}

// function is the HTTP function the triggers push to. It records, per
// sequence number, every invocation and every success, and answers as fail
// says: 0 or 200 is success, other statuses are returned as they are (in a
// batch, a failing item is named in batchItemFailures instead).
type function struct {
	srv   *httptest.Server
	fail  func(seq, try int) int
	delay time.Duration
	// wholeBatch fails a whole batch with the first failing item's status
	// instead of reporting items (to exercise bisect_on_error).
	wholeBatch bool

	mu      sync.Mutex
	tries   map[int]int
	success map[int]int
	ids     map[string]int // ce-id → seq
	order   []int          // successes in invocation order
	batches []int          // batch sizes
}

func newFunction(t testing.TB, fail func(seq, try int) int, delay time.Duration) *function {
	f := &function{fail: fail, delay: delay, tries: map[int]int{}, success: map[int]int{}, ids: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *function) url() string { return f.srv.URL + "/fn" }

type item struct {
	id  string
	seq int
}

func (f *function) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if f.delay > 0 {
		time.Sleep(f.delay) // the function's work
	}
	items, batch, err := parseItems(r, body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if batch {
		f.batches = append(f.batches, len(items))
	}
	codes := make([]int, len(items))
	anyFailed := false
	for i, it := range items {
		f.ids[it.id] = it.seq
		f.tries[it.seq]++
		if f.fail != nil {
			codes[i] = f.fail(it.seq, f.tries[it.seq])
		}
		if codes[i] == http.StatusOK {
			codes[i] = 0
		}
		anyFailed = anyFailed || codes[i] != 0
	}
	if batch && f.wholeBatch && anyFailed {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	var failed []string
	status := http.StatusOK
	for i, it := range items {
		switch {
		case codes[i] == 0:
			f.success[it.seq]++
			f.order = append(f.order, it.seq)
		case batch:
			failed = append(failed, fmt.Sprintf(`{"itemIdentifier":%q}`, it.id))
		default:
			status = codes[i]
		}
	}
	if batch {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"batchItemFailures":[%s]}`, strings.Join(failed, ","))
		return
	}
	w.WriteHeader(status)
}

// parseItems reads a binary-mode event or a structured batch.
func parseItems(r *http.Request, body []byte) ([]item, bool, error) {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/cloudevents-batch+json") {
		var p payload
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, false, fmt.Errorf("body %q: %w", body, err)
		}
		return []item{{id: r.Header.Get("Ce-Id"), seq: p.Seq}}, false, nil
	}
	var events []struct {
		ID         string          `json:"id"`
		Data       json.RawMessage `json:"data"`
		DataBase64 string          `json:"data_base64"`
	}
	if err := json.Unmarshal(body, &events); err != nil {
		return nil, true, err
	}
	items := make([]item, len(events))
	for i, e := range events {
		data := []byte(e.Data)
		if e.DataBase64 != "" {
			data, _ = base64.StdEncoding.DecodeString(e.DataBase64)
		}
		var p payload
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, true, fmt.Errorf("event %s data %q: %w", e.ID, data, err)
		}
		items[i] = item{id: e.ID, seq: p.Seq}
	}
	return items, true, nil
}

// snapshot copies the counters.
func (f *function) snapshot() (tries, success map[int]int, order []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tries, success = map[int]int{}, map[int]int{}
	for k, v := range f.tries {
		tries[k] = v
	}
	for k, v := range f.success {
		success[k] = v
	}
	return tries, success, append([]int(nil), f.order...)
}

// succeeded counts the distinct sequence numbers that succeeded.
func (f *function) succeeded() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.success)
}

// invoked counts invocations of distinct sequence numbers.
func (f *function) invoked() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tries)
}

func (f *function) seqOf(id string) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.ids[id]
	return s, ok
}

func (f *function) batchSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.batches...)
}
