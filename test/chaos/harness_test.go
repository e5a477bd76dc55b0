package chaos

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

// payload is the body of message or task seq.
func payload(seq int) []byte { return []byte(fmt.Sprintf(`{"seq":%d}`, seq)) }

// waitUntil polls cond every 50 ms until it holds or timeout passes.
func waitUntil(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

// settle waits until every accepted seq was delivered and no delivery
// came for quiet (late duplicates show up), or timeout passes.
func settle(l *Ledger, quiet, timeout time.Duration) bool {
	return waitUntil(timeout, func() bool {
		d, _ := l.Delivered()
		return d >= l.Accepted() && time.Since(l.LastDelivery()) > quiet
	})
}

// recovery waits until a success is recorded after back (the fault's
// end) and returns how long after fault (the fault's start) it came; 0 if
// none within timeout or when everything was delivered already.
func recovery(l *Ledger, fault, back time.Time, timeout time.Duration) time.Duration {
	if d, _ := l.Delivered(); d >= l.Accepted() {
		return 0 // everything was delivered before the fault ended
	}
	if waitUntil(timeout, func() bool { return l.LastDelivery().After(back) }) {
		return l.LastDelivery().Sub(fault)
	}
	return 0
}

// verdict is "ok" when nothing was lost or unexpected and duplicates are
// within bound (-1: any number), else "FAIL: ...".
func verdict(c Count, bound int, settled bool) string {
	var bad []string
	if !settled {
		bad = append(bad, "did not settle in time")
	}
	if c.Lost > 0 {
		bad = append(bad, "lost")
	}
	if c.Unexpected > 0 {
		bad = append(bad, "unexpected")
	}
	if bound >= 0 && c.Duplicated > bound {
		bad = append(bad, fmt.Sprintf("duplicates above %d", bound))
	}
	if len(bad) == 0 {
		return "ok"
	}
	return "FAIL: " + strings.Join(bad, ", ")
}

// serveConfig is a ferry config body: tenant t (key chaos-key), function f
// calling url, and extra (triggers, ...).
func serveConfig(url, fnExtra, extra string) string {
	return fmt.Sprintf(`tenants: [ { name: t, api_keys: [chaos-key-0001], max_concurrency: 64 } ]
functions:
  - name: f
    tenant: t
    backend: { http: { url: %q, timeout: 2s } }
    max_concurrency: 16
    retry: { max_attempts: 10, initial_interval: 50ms, max_interval: 500ms, max_age: 1h }
%s
%s`, url, fnExtra, extra)
}

// submitter posts tasks {"seq": n} to a Proc, retrying each until it is
// answered 202 (a refused or unanswered submit is not accepted, so it is
// retried rather than counted).
type submitter struct {
	p      *ferrytest.Proc
	l      *Ledger
	client *http.Client
}

func newSubmitter(p *ferrytest.Proc, l *Ledger) *submitter {
	return &submitter{p: p, l: l, client: &http.Client{Timeout: 5 * time.Second}}
}

// submit submits seq until accepted or stop is closed.
func (s *submitter) submit(seq int, stop <-chan struct{}) {
	for {
		req, _ := http.NewRequest(http.MethodPost, s.p.URL("/v1/functions/f/tasks"), bytes.NewReader(payload(seq)))
		req.Header.Set("Authorization", "Bearer chaos-key-0001")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "seq-"+strconv.Itoa(seq))
		resp, err := s.client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				s.l.Accept(seq)
				return
			}
		}
		select {
		case <-stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// submitAll submits seqs [from, to) with workers concurrent submitters.
func (s *submitter) submitAll(from, to, workers int, stop <-chan struct{}) {
	next := make(chan int)
	done := make(chan struct{})
	for range workers {
		go func() {
			defer func() { done <- struct{}{} }()
			for seq := range next {
				s.submit(seq, stop)
			}
		}()
	}
	for seq := from; seq < to; seq++ {
		next <- seq
	}
	close(next)
	for range workers {
		<-done
	}
}

// runDir is test/brokers' run directory.
func runDir() string {
	if d := os.Getenv("FERRY_BROKERS_RUN"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "ferry-brokers", "run")
}

// pidFiles are the processes kill -9 of a broker kills (RocketMQ: the
// broker, not the name server).
var pidFiles = map[string]string{
	"kafka":    "kafka/kafka.pid",
	"rocketmq": "rocketmq/broker.pid",
	"rabbitmq": "rabbitmq/rabbitmq.pid",
	"redis":    "redis/redis.pid",
}

// kill9Broker kills the broker process named in test/brokers' pidfile
// with SIGKILL and waits until it is gone.
func kill9Broker(t testing.TB, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(runDir(), pidFiles[name]))
	if err != nil {
		t.Fatalf("kill -9 %s: %v", name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		t.Fatalf("kill -9 %s: bad pidfile %q", name, b)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %s (pid %d): %v", name, pid, err)
	}
	if !waitUntil(30*time.Second, func() bool { return syscall.Kill(pid, 0) != nil }) {
		t.Fatalf("kill -9 %s: pid %d still alive", name, pid)
	}
}
