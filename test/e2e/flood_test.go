package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

// floodConns is how many idle keep-alive connections the flood holds: the
// probe's 20,000, which used up Ferry's file descriptors and failed every
// tenant's tasks for good.
const floodConns = 20000

// floodNoFile is Ferry's open-file limit in the test (soft and hard): far
// below the flood, so without the connection cap the flood would exhaust
// it many times over; with it (the default, a quarter: 256 connections)
// the store, the exec backend's pipes and the HTTP backend's sockets keep
// theirs.
const floodNoFile = 1024

// TestConnectionFloodFailsNoTask reproduces the connection-flood probe: a
// client without an API key opens 20,000 keep-alive connections (one
// request each, answered 401, then idle) and holds them, while two
// tenants' tasks run on an HTTP and an exec backend with max_attempts 1.
// Every task succeeds on its first attempt, and Ferry's open files stay
// under its limit throughout.
func TestConnectionFloodFailsNoTask(t *testing.T) {
	// The flood's sockets are the test process's own files.
	conns := floodConns
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if need := uint64(floodConns + 2000); lim.Cur < need {
		raised := syscall.Rlimit{Cur: max(need, lim.Max), Max: max(need, lim.Max)}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			// Not root: hold what the limit allows, still 10x Ferry's.
			conns = int(lim.Cur) - 2000
			t.Logf("cannot raise the test's open-file limit to %d (%v): the flood holds %d connections", need, err, conns)
		}
	}

	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Millisecond) // a little work, so tasks overlap the flood
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(backend.Close)
	f := &ferryProc{Proc: ferrytest.StartConfigNoFile(t, `
server: { listen: "{{listen}}", shutdown_timeout: 10s }
store: { embedded: { path: "{{data}}" } }
log: { level: info }
tenants:
  - { name: a, api_keys: [key-a] }
  - { name: b, api_keys: [key-b] }
functions:
  - name: web
    tenant: a
    backend: { http: { url: "`+backend.URL+`/", timeout: 10s } }
    retry: { max_attempts: 1 }
    max_concurrency: 8
  - name: sh
    tenant: b
    backend: { exec: { command: [cat], timeout: 10s } }
    retry: { max_attempts: 1 }
    max_concurrency: 8
`, floodNoFile), client: checkedClient(t, 30*time.Second)}
	t.Cleanup(f.client.CloseIdleConnections)

	// The flood: raw connections from several loopback addresses (each
	// has its own ephemeral ports), one request without a key each.
	var opened, failed atomic.Int64
	held := make(chan net.Conn, conns)
	t.Cleanup(func() {
		close(held)
		for c := range held {
			_ = c.Close()
		}
	})
	var flood sync.WaitGroup
	const dialers = 32
	for i := range dialers {
		flood.Go(func() {
			d := net.Dialer{Timeout: 20 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%8))}}
			for n := i; n < conns; n += dialers {
				c, err := d.Dial("tcp", f.Addr)
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
				held <- c
			}
		})
	}
	// Ferry's open files, sampled while the flood runs.
	var maxFDs atomic.Int64
	stopSampling := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", f.Pid())); err == nil && int64(len(fds)) > maxFDs.Load() {
				maxFDs.Store(int64(len(fds)))
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	defer func() { close(stopSampling); sampler.Wait() }()
	ferrytest.WaitFor(t, 60*time.Second, "the flood to reach 2,000 connections", func() bool { return opened.Load() >= 2000 })

	// Tasks of both tenants while the flood grows and is held.
	const perTenant = 60
	var ids []string
	a, b := f.as("key-a"), f.as("key-b")
	for i := range perTenant {
		// Idempotency-Key makes the client retry a submit whose idle
		// connection the cap closed just as it was reused.
		ids = append(ids, a.submitOK(t, "web", `{"n":`+fmt.Sprint(i)+`}`, map[string]string{"Idempotency-Key": fmt.Sprintf("a-%d", i)}))
		ids = append(ids, b.submitOK(t, "sh", `{"n":`+fmt.Sprint(i)+`}`, map[string]string{"Idempotency-Key": fmt.Sprintf("b-%d", i)}))
	}
	flood.Wait()
	t.Logf("flood: %d connections opened and held, %d failed to connect; Ferry's open files peaked at %d (limit %d)",
		opened.Load(), failed.Load(), maxFDs.Load(), floodNoFile)
	if opened.Load() < int64(conns)*9/10 {
		t.Errorf("only %d of %d flood connections were made", opened.Load(), conns)
	}

	for i, id := range ids {
		c := f.as("key-a")
		if i%2 == 1 {
			c = f.as("key-b")
		}
		v := c.waitFinal(t, id)
		if v.Status != "succeeded" || v.Attempts != 1 {
			t.Fatalf("task %s: %s after %d attempts (%+v), want succeeded on its first attempt", id, v.Status, v.Attempts, v.Error)
		}
	}
	m := f.mustDo(t, http.MethodGet, "/metrics", nil, nil)
	t.Logf("connections:\n%s", grepLines(m.body, "ferry_api_connections"))
	if strings.Contains(string(m.body), "ferry_local_resource_errors_total{") {
		t.Logf("local resource errors during the flood (not spent):\n%s", grepLines(m.body, "ferry_local_resource_errors_total{"))
	}
	if r := f.mustDo(t, http.MethodGet, "/readyz?verbose=1", nil, nil); r.status != http.StatusOK || !strings.Contains(string(r.body), `"store":"ok"`) {
		t.Errorf("GET /readyz?verbose=1 after the flood: %d %s", r.status, r.body)
	}
	if maxFDs.Load() >= floodNoFile {
		t.Errorf("Ferry's open files reached %d, its limit %d", maxFDs.Load(), floodNoFile)
	}
}
