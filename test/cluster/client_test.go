package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

// taskView is the API's JSON form of a task (the fields the tests read).
type taskView struct {
	ID         string     `json:"id"`
	Function   string     `json:"function"`
	Status     string     `json:"status"`
	Attempts   int        `json:"attempts"`
	Recoveries int        `json:"recoveries"` // when the view carries it
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	FinishedAt *time.Time `json:"finished_at"`
	Error      *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	// HTTPStatus is the answer to the GET when it was not 200 (Status is
	// then "http <code>"); 0 otherwise.
	HTTPStatus int `json:"-"`
}

func (v taskView) final() bool {
	return v.Status == "succeeded" || v.Status == "failed" || v.Status == "cancelled"
}

// ledger is the client's side of a scenario, per sequence number: the
// task id answered 202, or a definite refusal (a 4xx), or an ambiguous
// end (no answer, or a 5xx: the task may or may not be stored).
type ledger struct {
	mu        sync.Mutex
	ids       map[int]string    // seq → task id, for 202s
	refused   map[int]int       // seq → status of the definite refusal
	ambiguous map[int]string    // seq → what happened
	sent      map[int]time.Time // seq → when its first request was sent
	accepted  map[int]time.Time // seq → when the 202 came back
	statuses  map[int]int       // HTTP status → answers (0: no answer)
	conflicts []string          // a seq answered with two different ids
}

func newLedger() *ledger {
	return &ledger{
		ids: map[int]string{}, refused: map[int]int{}, ambiguous: map[int]string{},
		sent: map[int]time.Time{}, accepted: map[int]time.Time{}, statuses: map[int]int{},
	}
}

// IDs returns the accepted task ids of the seqs keep selects (all when
// keep is nil), in seq order.
func (l *ledger) IDs(keep func(seq int) bool) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	seqs := make([]int, 0, len(l.ids))
	for s := range l.ids {
		if keep == nil || keep(s) {
			seqs = append(seqs, s)
		}
	}
	sort.Ints(seqs)
	out := make([]string, len(seqs))
	for i, s := range seqs {
		out[i] = l.ids[s]
	}
	return out
}

// Accepted counts the 202s.
func (l *ledger) Accepted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ids)
}

// Statuses describes the answers, e.g. "202×990 503×10 none×2".
func (l *ledger) Statuses() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	codes := make([]int, 0, len(l.statuses))
	for c := range l.statuses {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var b bytes.Buffer
	for _, c := range codes {
		name := strconv.Itoa(c)
		if c == 0 {
			name = "none"
		}
		fmt.Fprintf(&b, "%s×%d ", name, l.statuses[c])
	}
	return string(bytes.TrimSpace(b.Bytes()))
}

// submitter submits tasks of one function, each carrying {"seq": n} (or
// Payload(n)) and Idempotency-Key seq-<n>, round-robin over Nodes by seq.
type submitter struct {
	c       *cluster
	Key     string  // API key
	Fn      string  // function name
	Nodes   []*node // targets (default: every node of the cluster)
	Header  map[string]string
	Payload func(seq int) []byte
	// Retry is how long a seq is tried again, on the next node, after no
	// answer, a 5xx or a 429 (the same Idempotency-Key makes that safe).
	// Zero: one try, so a 5xx or no answer stays ambiguous.
	Retry time.Duration
}

// Submit submits seq and records the end in l. It never fails the test:
// it may run off the test goroutine.
func (s *submitter) Submit(l *ledger, seq int) {
	nodes := s.Nodes
	if len(nodes) == 0 {
		nodes = s.c.Nodes
	}
	body := []byte(fmt.Sprintf(`{"seq":%d}`, seq))
	if s.Payload != nil {
		body = s.Payload(seq)
	}
	first := time.Now()
	l.mu.Lock()
	l.sent[seq] = first
	l.mu.Unlock()
	var lastErr string
	for try := 0; ; try++ {
		n := nodes[(seq+try)%len(nodes)]
		req, _ := http.NewRequest(http.MethodPost, n.URL("/v1/functions/"+s.Fn+"/tasks"), bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.Key)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "seq-"+strconv.Itoa(seq))
		for k, v := range s.Header {
			req.Header.Set(k, v)
		}
		status, answer, err := s.c.do(req)
		l.mu.Lock()
		l.statuses[status]++
		l.mu.Unlock()
		retry := false
		switch {
		case err != nil:
			lastErr, retry = fmt.Sprintf("%s: %v", n.Name, err), true
		case status == http.StatusAccepted:
			var v taskView
			if err := json.Unmarshal(answer, &v); err != nil || v.ID == "" {
				lastErr = fmt.Sprintf("%s: 202 without a task id: %s", n.Name, answer)
				break
			}
			l.mu.Lock()
			if old, ok := l.ids[seq]; ok && old != v.ID {
				l.conflicts = append(l.conflicts, fmt.Sprintf("seq %d: task %s, then %s", seq, old, v.ID))
			}
			l.ids[seq], l.accepted[seq] = v.ID, time.Now()
			delete(l.ambiguous, seq)
			l.mu.Unlock()
			return
		case status >= 500:
			lastErr, retry = fmt.Sprintf("%s: %d %s", n.Name, status, answer), true
		case status == http.StatusTooManyRequests:
			lastErr, retry = fmt.Sprintf("%s: 429 %s", n.Name, answer), true
		default:
			l.mu.Lock()
			l.refused[seq] = status
			l.mu.Unlock()
			return
		}
		if !retry || time.Since(first) >= s.Retry {
			l.mu.Lock()
			if status == http.StatusTooManyRequests {
				l.refused[seq] = status
			} else {
				l.ambiguous[seq] = lastErr
			}
			l.mu.Unlock()
			return
		}
		time.Sleep(20 * time.Millisecond) // client back-off before the next try
	}
}

// Many submits seqs from..from+n-1 from `parallel` goroutines.
func (s *submitter) Many(l *ledger, from, n, parallel int) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for seq := range next {
				s.Submit(l, seq)
			}
		})
	}
	for seq := from; seq < from+n; seq++ {
		next <- seq
	}
	close(next)
	wg.Wait()
}

// do sends one request and reads the answer.
func (c *cluster) do(req *http.Request) (int, []byte, error) {
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// get reads one task through n.
func (c *cluster) get(n *node, key, id string) taskView {
	req, _ := http.NewRequest(http.MethodGet, n.URL("/v1/tasks/"+id), nil)
	req.Header.Set("Authorization", "Bearer "+key)
	status, body, err := c.do(req)
	var v taskView
	switch {
	case err != nil:
		v.Status = "unreadable: " + err.Error()
	case status != http.StatusOK:
		v.Status, v.HTTPStatus = "http "+strconv.Itoa(status), status
	default:
		if err := json.Unmarshal(body, &v); err != nil {
			v.Status = "undecodable: " + err.Error()
		}
	}
	v.ID = id
	return v
}

// waitFinal reads the tasks through nodes (round-robin, 8 at a time)
// until each is final or timeout passes, and returns the last view of
// each: a task not final by then is returned as it was (tally counts it
// lost). It first waits for the backend to have answered a call of every
// id, which costs no request.
func (c *cluster) waitFinal(t *testing.T, nodes []*node, key string, ids []string, timeout time.Duration) map[string]taskView {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !c.Backend.Seen(ids) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	views := make(map[string]taskView, len(ids))
	pending := ids
	for pass := 0; len(pending) > 0; pass++ {
		if pass > 0 {
			if time.Now().After(deadline) {
				t.Errorf("%d of %d tasks not final after %s (e.g. %s: %s)", len(pending), len(ids), timeout, pending[0], views[pending[0]].Status)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		var (
			mu    sync.Mutex
			still []string
			wg    sync.WaitGroup
			next  = make(chan int)
		)
		for range 8 {
			wg.Go(func() {
				for i := range next {
					v := c.get(nodes[i%len(nodes)], key, pending[i])
					mu.Lock()
					views[pending[i]] = v
					if !v.final() {
						still = append(still, pending[i])
					}
					mu.Unlock()
				}
			})
		}
		for i := range pending {
			next <- i
		}
		close(next)
		wg.Wait()
		pending = still
	}
	return views
}

// counts are the reliability.md figures of a scenario.
type counts struct {
	N, lost, duplicated, unexpected int
	ambiguous, ambiguousRan         int // submits without a definite answer; of them, run
}

func (c counts) String() string {
	return fmt.Sprintf("N=%d lost=%d duplicated=%d unexpected=%d", c.N, c.lost, c.duplicated, c.unexpected)
}

// tally counts per reliability.md over calls (the caller picks them):
// lost = accepted tasks not succeeded in views; duplicated = accepted tasks
// the backend was called for more than once with the same Ferry-Attempt
// (every call counts, finished or cut short: a retry after a failure is
// the next attempt, a re-run after a crash or a lost lease is the same
// one); unexpected = calls for a task never accepted, unless its
// submit was ambiguous (no answer or a 5xx), plus a seq answered with two
// task ids. Problems are reported with t.Errorf.
func tally(t *testing.T, l *ledger, views map[string]taskView, calls []call) counts {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	c := counts{N: len(l.ids), ambiguous: len(l.ambiguous), unexpected: len(l.conflicts)}
	for _, s := range l.conflicts {
		t.Errorf("one seq, two tasks: %s", s)
	}
	accepted := make(map[string]int, len(l.ids))
	for seq, id := range l.ids {
		accepted[id] = seq
	}
	perID := map[string]int{}
	perAttempt := map[[2]string]int{}
	twice := map[string]bool{}
	ranAmbiguous := map[int]bool{}
	unexpected := map[string]bool{}
	for _, cl := range calls {
		perID[cl.ID]++
		if perAttempt[[2]string{cl.ID, cl.Attempt}]++; perAttempt[[2]string{cl.ID, cl.Attempt}] > 1 {
			twice[cl.ID] = true
		}
		if _, ok := accepted[cl.ID]; ok {
			continue
		}
		if _, ok := l.ambiguous[cl.Seq]; ok {
			ranAmbiguous[cl.Seq] = true
			continue
		}
		unexpected[cl.ID] = true
	}
	for id := range unexpected {
		t.Errorf("the backend ran task %s, which was never accepted", id)
	}
	c.unexpected += len(unexpected)
	c.ambiguousRan = len(ranAmbiguous)
	var lostShown int
	for id, seq := range accepted {
		if v := views[id]; v.Status != "succeeded" {
			c.lost++
			if lostShown++; lostShown <= 10 {
				t.Errorf("accepted task %s (seq %d) is %q (attempts %d, error %+v), want succeeded; backend calls: %d",
					id, seq, v.Status, v.Attempts, v.Error, perID[id])
			}
		}
		if twice[id] {
			c.duplicated++
		}
	}
	return c
}
