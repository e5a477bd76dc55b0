package async

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// sample is one backend start: the task's key (its tenant, when the system
// has tenants), the instant it counts from (the unix-nano "t" of its
// payload: when it was submitted, due or made ready) and when the backend
// started it.
type sample struct {
	K string `json:"k,omitempty"`
	T int64  `json:"t"`
	S int64  `json:"s"`
}

// recorder notes every backend start. The no-op backends of the systems
// under test call record and nothing else.
type recorder struct {
	n  atomic.Int64
	mu sync.Mutex
	s  []sample
}

// record notes a backend start of a task with payload {"t": unix-nano}.
func (r *recorder) record(key string, payload []byte) {
	now := time.Now().UnixNano()
	r.mu.Lock()
	r.s = append(r.s, sample{K: key, T: payloadTime(payload), S: now})
	r.mu.Unlock()
	r.n.Add(1)
}

// payloadTime reads t from a payload {"t":123}; 0 when there is none.
func payloadTime(b []byte) int64 {
	i := bytes.Index(b, []byte(`"t":`))
	if i < 0 {
		return 0
	}
	var t int64
	for _, c := range b[i+4:] {
		if c < '0' || c > '9' {
			break
		}
		t = t*10 + int64(c-'0')
	}
	return t
}

// payload is the body of every task: {"t": unix-nano of at}.
func payload(at time.Time) []byte {
	b := strconv.AppendInt([]byte(`{"t":`), at.UnixNano(), 10)
	return append(b, '}')
}

// count is the number of backend starts so far.
func (r *recorder) count(context.Context) (int64, error) { return r.n.Load(), nil }

// samples returns the starts from the from-th on.
func (r *recorder) samples(_ context.Context, from int) ([]sample, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if from > len(r.s) {
		from = len(r.s)
	}
	return slices.Clone(r.s[from:]), nil
}

// ServeHTTP answers GET /count (a number) and GET /samples?from=K (JSON).
func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	switch req.URL.Path {
	case "/count":
		_, _ = io.WriteString(w, strconv.FormatInt(r.n.Load(), 10))
	case "/samples":
		from, _ := strconv.Atoi(req.URL.Query().Get("from"))
		s, _ := r.samples(req.Context(), from)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s)
	default:
		http.NotFound(w, req)
	}
}

// serve starts a listener on a free loopback port for h; close stops it.
func serve(h http.Handler) (addr string, closeFn func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
		<-done
	}, nil
}

// starts is where the generator reads backend starts: a child's stats
// listener, or a recorder in this process (the HTTP function server).
type starts interface {
	count(ctx context.Context) (int64, error)
	samples(ctx context.Context, from int) ([]sample, error)
}

// remoteStarts reads a child's recorder over its stats listener.
type remoteStarts struct {
	base   string
	client *http.Client
}

func newRemoteStarts(addr string) *remoteStarts {
	return &remoteStarts{base: "http://" + addr, client: &http.Client{Timeout: time.Minute}}
}

func (s *remoteStarts) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, err
}

func (s *remoteStarts) count(ctx context.Context) (int64, error) {
	b, err := s.get(ctx, "/count")
	if err != nil {
		return 0, fmt.Errorf("read backend starts: %w", err)
	}
	return strconv.ParseInt(string(b), 10, 64)
}

func (s *remoteStarts) samples(ctx context.Context, from int) ([]sample, error) {
	b, err := s.get(ctx, "/samples?from="+strconv.Itoa(from))
	if err != nil {
		return nil, fmt.Errorf("read backend starts: %w", err)
	}
	var out []sample
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("read backend starts: %w", err)
	}
	return out, nil
}

func (s *remoteStarts) close() { s.client.CloseIdleConnections() }

// errTimeout is returned when a system does not finish its tasks in time.
var errTimeout = errors.New("timed out")

// waitFor polls cond every interval until it holds, fails, or timeout
// passes (errTimeout, wrapped with what was last seen).
func waitFor(ctx context.Context, timeout, interval time.Duration, cond func() (bool, string, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, seen, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w after %s: %s", errTimeout, timeout, seen)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

// waitStarts waits until st has seen n backend starts.
func waitStarts(ctx context.Context, st starts, n int, timeout time.Duration) error {
	return waitFor(ctx, timeout, 5*time.Millisecond, func() (bool, string, error) {
		c, err := st.count(ctx)
		return c >= int64(n), fmt.Sprintf("%d of %d tasks started", c, n), err
	})
}

// percentile returns the p-quantile (0..1, nearest rank) of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p * float64(len(sorted))))
	i = min(max(i-1, 0), len(sorted)-1)
	return sorted[i]
}

// latenciesMS returns the sorted start − t of the samples, in ms.
func latenciesMS(s []sample) []float64 {
	out := make([]float64, len(s))
	for i, x := range s {
		out[i] = float64(x.S-x.T) / 1e6
	}
	slices.Sort(out)
	return out
}
