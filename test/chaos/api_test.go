package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

// floodConns is the idle connections of the flood row, Ferry's open-file
// limit floodNoFile.
const floodConns, floodNoFile = 3000, 1024

// rowFlood: thousands of idle keep-alive connections without an API key
// while tasks are submitted and run.
func rowFlood(t *testing.T, tab *Table) {
	row := Row{Fault: fmt.Sprintf("connection flood: %d idle keep-alive connections, no API key, Ferry at ulimit -n %d", floodConns, floodNoFile), Target: "API (embedded store)"}
	defer func() { tab.Add(row) }()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if need := uint64(floodConns + 2000); lim.Cur < need {
		raised := syscall.Rlimit{Cur: max(need, lim.Max), Max: max(need, lim.Max)}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			t.Fatalf("raising the test's open-file limit to %d: %v", need, err)
		}
	}
	l := NewLedger()
	be := NewBackend(l, slowly(10*time.Millisecond))
	defer be.Close()
	p := ferrytest.StartConfigNoFile(t, storeConfig("{{data}}", "", be.URL()), floodNoFile)

	var opened, failed atomic.Int64
	var mu sync.Mutex
	var held []net.Conn
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			_ = c.Close()
		}
	}()
	var flood sync.WaitGroup
	const dialers = 32
	for i := range dialers {
		flood.Go(func() {
			d := net.Dialer{Timeout: 20 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%8))}}
			for n := i; n < floodConns; n += dialers {
				c, err := d.Dial("tcp", p.Addr)
				if err == nil {
					_, err = c.Write([]byte("GET /v1/tasks HTTP/1.1\r\nHost: ferry\r\n\r\n"))
				}
				if err != nil {
					failed.Add(1)
					if c != nil {
						_ = c.Close()
					}
					continue
				}
				opened.Add(1)
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		})
	}
	var maxFDs atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.Pid())); err == nil && int64(len(fds)) > maxFDs.Load() {
				maxFDs.Store(int64(len(fds)))
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	waitUntil(60*time.Second, func() bool { return opened.Load() >= 1000 })
	// Tasks while the flood grows and is held; the submitter retries a
	// refused or cut submit under its Idempotency-Key.
	newSubmitter(p, l).submitAll(0, 1000, 8, nil)
	flood.Wait()
	settled := settle(l, 2*time.Second, 2*time.Minute)
	close(stop)
	sampler.Wait()
	p.Term()
	row.Count = l.Count()
	row.Status = verdict(row.Count, 0, settled)
	row.Note = fmt.Sprintf("%d connections opened and held (%d refused at connect), Ferry's open files peaked at %d; lost 0 and no task failed is the pass rule",
		opened.Load(), failed.Load(), maxFDs.Load())
	if row.Status != "ok" {
		t.Error(row.Status)
	}
}

// hookReceiver counts outcome deliveries by webhook-id; Down and Up stop
// and restart it on the same address (down: connection refused).
type hookReceiver struct {
	addr string
	mu   sync.Mutex
	srv  *http.Server
	ids  map[string]int
	last time.Time
	// up is when Up was called, first the first delivery after it.
	up, first time.Time
}

func newHookReceiver(t *testing.T) *hookReceiver {
	r := &hookReceiver{ids: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(r.Down)
	return r
}

func (r *hookReceiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.ids[req.Header.Get("webhook-id")]++
		r.last = time.Now()
		if !r.up.IsZero() && r.first.IsZero() {
			r.first = r.last
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// Down closes the listener and every connection.
func (r *hookReceiver) Down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Up listens on the same address again.
func (r *hookReceiver) Up(t *testing.T) {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		t.Fatalf("receiver up again on %s: %v", r.addr, err)
	}
	r.mu.Lock()
	r.up = time.Now()
	r.mu.Unlock()
	r.serve(ln)
}

// firstAfterUp is the first delivery after Up (zero: none yet).
func (r *hookReceiver) firstAfterUp() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first
}

// counts are the distinct webhook-ids, all deliveries and the last one's time.
func (r *hookReceiver) counts() (distinct, total int, last time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, n := range r.ids {
		total += n
	}
	return len(r.ids), total, r.last
}

// hookDown is how long the webhook receiver is down (3 min in the plan).
const hookDown = 3 * time.Minute

// rowWebhookDown: on_success outcomes go to a receiver that is down for
// hookDown, then up; every outcome must arrive, duplicates counted by
// webhook-id.
func rowWebhookDown(t *testing.T, tab *Table) {
	row := Row{Fault: fmt.Sprintf("webhook receiver down %s", hookDown), Target: "webhook destination (embedded store)"}
	defer func() { tab.Add(row) }()
	l := NewLedger()
	be := NewBackend(l, nil)
	defer be.Close()
	hook := newHookReceiver(t)
	dest := fmt.Sprintf(`    destinations: { on_success: [ { webhook: { url: "http://%s/hook", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", timeout: 2s, retry: { max_attempts: 1000, initial_interval: 200ms, max_interval: 2s, max_age: 1h } } } ] }`, hook.addr)
	p := ferrytest.Start(t, serveConfig(be.URL(), dest, ""))
	s := newSubmitter(p, l)
	s.submitAll(0, 200, 8, nil)
	waitUntil(30*time.Second, func() bool { d, _, _ := hook.counts(); return d >= 100 })
	downAt := time.Now()
	hook.Down()
	s.submitAll(200, 1000, 8, nil) // outcomes of these meet the receiver down
	time.Sleep(time.Until(downAt.Add(hookDown)))
	hook.Up(t)
	n := l.Accepted()
	ok := waitUntil(2*time.Minute, func() bool {
		d, _, last := hook.counts()
		return d >= n && time.Since(last) > 3*time.Second
	})
	if first := hook.firstAfterUp(); !first.IsZero() {
		row.Recovery = first.Sub(downAt)
	}
	p.Term()
	c := l.Count()
	distinct, total, _ := hook.counts()
	row.Count = Count{N: n, Lost: max(0, n-distinct), Duplicated: total - distinct, Unexpected: c.Unexpected + max(0, distinct-n), Retries: c.Retries}
	row.Status = verdict(row.Count, -1, ok && c.Lost == 0)
	row.Note = fmt.Sprintf("outcomes (on_success) counted by webhook-id: %d of %d tasks; receiver down %s (connection refused), retry 200 ms → 2 s; %d tasks' backend deliveries lost", distinct, n, hookDown, c.Lost)
	if row.Status != "ok" {
		t.Error(row.Status)
	}
}

// peakRSS is the process's VmHWM in MiB (0 if unread).
func peakRSS(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.Atoi(f[1])
			return kb / 1024
		}
	}
	return 0
}

// batchSubmit posts seqs [from, to) in one batch, each delayed by delay
// (0: none), and accepts the items answered without an error.
func batchSubmit(p *ferrytest.Proc, l *Ledger, from, to int, delay time.Duration) error {
	var after string
	if delay > 0 {
		after = fmt.Sprintf(`,"delay":%q`, delay.Round(time.Millisecond))
	}
	var body bytes.Buffer
	body.WriteString(`{"tasks":[`)
	for seq := from; seq < to; seq++ {
		if seq > from {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"payload":%s,"idempotency_key":"seq-%d"%s}`, payload(seq), seq, after)
	}
	body.WriteString(`]}`)
	req, _ := http.NewRequest(http.MethodPost, p.URL("/v1/functions/f/tasks/batch"), &body)
	req.Header.Set("Authorization", "Bearer chaos-key-0001")
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("batch %d: %w", from, err)
	}
	defer resp.Body.Close()
	var out struct {
		Tasks []struct {
			Error *struct{ Code string } `json:"error"`
		} `json:"tasks"`
	}
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("batch %d: status %d", from, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return fmt.Errorf("batch %d: %w", from, err)
	}
	for i, item := range out.Tasks {
		if item.Error == nil {
			l.Accept(from + i)
		}
	}
	return nil
}

// backlogTasks is the backlog of the GOMEMLIMIT row.
const backlogTasks = 1_000_000

// rowLowMemLimit: GOMEMLIMIT=64MiB on ferry, a backlog submitted through
// the batch endpoint, every task delayed to one instant after the last
// submit, so that the whole backlog is queued at once; then drained.
func rowLowMemLimit(t *testing.T, tab *Table) {
	row := Row{Fault: fmt.Sprintf("GOMEMLIMIT=64MiB, backlog of %d tasks", backlogTasks), Target: "embedded store"}
	defer func() { tab.Add(row) }()
	l := NewLedger()
	be := NewBackend(l, nil)
	defer be.Close()
	cfg := strings.Replace(storeConfig("{{data}}", "", be.URL()), "max_concurrency: 64 }", fmt.Sprintf("max_concurrency: 64, max_queued: %d }", 2*backlogTasks), 1)
	p := ferrytest.StartConfigEnv(t, "dispatcher: { workers: 32 }\n"+cfg, "GOMEMLIMIT=64MiB")
	start := time.Now()
	// Every task is ready at readyAt, past the end of the submits (about
	// 20,000 per second here; a late submit is simply ready at once).
	readyAt := start.Add(time.Duration(backlogTasks/15_000+10) * time.Second)
	for from := 0; from < backlogTasks; from += 1000 {
		if err := batchSubmit(p, l, from, from+1000, time.Until(readyAt)); err != nil {
			t.Fatal(err)
		}
	}
	submitted := time.Since(start)
	queuedRSS := peakRSS(p.Pid())
	settled := settle(l, 2*time.Second, 30*time.Minute)
	alive := p.Running()
	rss := peakRSS(p.Pid())
	drained := time.Since(readyAt)
	p.Term()
	row.Count = l.Count()
	row.Status = verdict(row.Count, 0, settled)
	if !alive {
		row.Status = "FAIL: ferry exited (OOM?)"
	}
	row.Note = fmt.Sprintf("%d submitted in %s (1,000 per batch, all delayed to one instant %s after the first submit), peak RSS %d MiB with all of them queued; drained in %s (%.0f tasks/s, dispatcher.workers 32, function max_concurrency 16); ferry alive, peak RSS %d MiB",
		backlogTasks, submitted.Round(time.Second), readyAt.Sub(start).Round(time.Second), queuedRSS, drained.Round(time.Second), float64(backlogTasks)/drained.Seconds(), rss)
	if row.Status != "ok" {
		t.Error(row.Status)
	}
}
