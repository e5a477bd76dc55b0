// Package storefault runs the real ferry binary against a damaged or full
// embedded store (issue 15, items 1 and 2): a filesystem that fills up
// while tasks are submitted, a directory that lost its CURRENT file, a
// damaged write-ahead log, an undecodable task record, and a second
// process on a held directory.
package storefault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ferrytest.Cleanup()
	os.Exit(code)
}

// body is the tenant and the function every test uses: echo's output is
// its input.
const body = `tenants:
  - { name: demo, api_keys: [demo-key], max_queued: 1000000 }
functions:
  - name: echo
    tenant: demo
    backend: { exec: { command: [cat], timeout: 10s } }
    max_concurrency: 8
  - name: slow
    tenant: demo
    backend: { exec: { command: [sh, -c, "sleep 1; cat"], timeout: 10s } }
    max_concurrency: 4
`

// config is a whole config with the data directory at data and extra
// keys in store.embedded.
func config(data, extra string) string {
	return fmt.Sprintf("server: { listen: \"{{listen}}\", shutdown_timeout: 5s }\n"+
		"store: { embedded: { path: %q%s } }\nlog: { level: info }\n", data, extra) + body
}

var client = &http.Client{Timeout: 10 * time.Second}

// submit posts one task to echo and returns the status, the Retry-After
// header and the body.
func submit(t *testing.T, p *ferrytest.Proc, payload []byte) (int, string, []byte) {
	t.Helper()
	return submitTo(t, p, "echo", payload)
}

// submitTo is submit to the function fn.
func submitTo(t *testing.T, p *ferrytest.Proc, fn string, payload []byte) (int, string, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.URL("/v1/functions/"+fn+"/tasks"), bytes.NewReader(payload))
	req.Header.Set("Authorization", "Bearer demo-key")
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("submit: %v", err)
		return 0, "", nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), b
}

// get fetches path with the demo key and returns the status and body.
func get(t *testing.T, p *ferrytest.Proc, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, p.URL(path), nil)
	req.Header.Set("Authorization", "Bearer demo-key")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// taskID is the id in a 202 answer.
func taskID(b []byte) string {
	_, rest, _ := strings.Cut(string(b), `"id":"`)
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

// tmpfs mounts a tmpfs of size bytes and unmounts it at the end.
func tmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Fatalf("mount a tmpfs (tests run as root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

func free(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// fill grows a filler file in dir until less than left bytes are free.
func fill(t *testing.T, dir string, left int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for free(t, dir) >= left {
		// ENOSPC can be transient on a tmpfs: Pebble's fallocate of a new
		// WAL holds pages until it fails and gives them back.
		if _, err := f.Write(chunk); err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("filler: %v", err)
		}
	}
	return path
}

func ready(p *ferrytest.Proc) int {
	resp, err := client.Get(p.URL("/readyz"))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitDone polls every id until it succeeded.
func waitDone(t *testing.T, p *ferrytest.Proc, ids []string) {
	t.Helper()
	for _, id := range ids {
		ferrytest.WaitFor(t, 30*time.Second, "task "+id+" succeeded", func() bool {
			code, b := get(t, p, "/v1/tasks/"+id)
			if code != http.StatusOK {
				t.Fatalf("GET task %s: %d %s", id, code, b)
			}
			if strings.Contains(b, `"status":"failed"`) {
				t.Fatalf("task %s failed: %s", id, b)
			}
			return strings.Contains(b, `"status":"succeeded"`)
		})
	}
}

// The probe: submits while the disk fills. Every task acknowledged before
// it filled succeeds, submits then answer 507 store_full with Retry-After,
// /readyz 503, the process stays up without a panic; once the filler is
// gone it is ready and accepts again, and SIGTERM ends it.
func TestDiskFullRefusesSubmitsAndRecovers(t *testing.T) {
	// Pebble preallocates each WAL to 110 % of its memtable (35 MiB here),
	// so the filesystem leaves room for two.
	mnt := tmpfs(t, 128<<20)
	p := ferrytest.StartConfig(t, config(filepath.Join(mnt, "data"), ", min_free: 8MiB"))

	payload := bytes.Repeat([]byte("x"), 4<<10)
	var (
		mu       sync.Mutex
		accepted []string
		refused  int
	)
	// Four submitters run while the filler grows, up to 400 accepted
	// tasks (enough to check, few enough to wait for).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				code, retry, b := submit(t, p, payload)
				mu.Lock()
				switch code {
				case http.StatusAccepted:
					accepted = append(accepted, taskID(b))
				case http.StatusInsufficientStorage:
					if !strings.Contains(string(b), `"store_full"`) || retry == "" {
						t.Errorf("507 without store_full and Retry-After: %q %s", retry, b)
					}
					refused++
				default:
					t.Errorf("submit: %d %s", code, b)
					cancel()
				}
				enough := len(accepted) >= 400
				mu.Unlock()
				if enough {
					return
				}
			}
		})
	}
	ferrytest.WaitFor(t, 10*time.Second, "100 accepted tasks", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(accepted) >= 100
	})
	// Slow tasks (1 s each, 4 at a time) are still queued or running
	// when the disk fills: they must finish below the reserve.
	var slow []string
	for i := range 16 {
		code, _, b := submitTo(t, p, "slow", fmt.Appendf(nil, `{"slow":%d}`, i))
		if code != http.StatusAccepted {
			t.Fatalf("submit slow: %d %s", code, b)
		}
		slow = append(slow, taskID(b))
	}
	filler := fill(t, mnt, 6<<20) // below the 8 MiB reserve, above zero
	cancel()
	wg.Wait()
	// Ferry measures again within 250 ms: then /readyz is 503 and every
	// submit is refused. Pebble may free space meanwhile (a flush deletes
	// old WALs): the filler is topped up before each check.
	ferrytest.WaitFor(t, 5*time.Second, "/readyz 503", func() bool {
		fill(t, mnt, 6<<20)
		return ready(p) == http.StatusServiceUnavailable
	})
	for range 20 {
		fill(t, mnt, 6<<20)
		code, retry, b := submit(t, p, payload)
		if code != http.StatusInsufficientStorage || !strings.Contains(string(b), `"store_full"`) || retry == "" {
			t.Fatalf("submit below the reserve: %d, Retry-After %q, %s; want 507 store_full with Retry-After", code, retry, b)
		}
		refused++
	}
	t.Logf("%d tasks accepted, %d refused with 507; %d bytes free", len(accepted), refused, free(t, mnt))
	ferrytest.WaitFor(t, 5*time.Second, "/readyz 503", func() bool {
		fill(t, mnt, 6<<20)
		return ready(p) == http.StatusServiceUnavailable
	})
	fill(t, mnt, 6<<20)
	req, _ := http.NewRequest(http.MethodPost, p.URL("/v1/functions/echo/tasks/batch"), strings.NewReader(`{"tasks":[{"payload":1},{"payload":2}]}`))
	req.Header.Set("Authorization", "Bearer demo-key")
	if resp, err := client.Do(req); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusInsufficientStorage || resp.Header.Get("Retry-After") == "" {
			t.Errorf("batch submit below the reserve: %d, Retry-After %q; want 507 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	if _, b := get(t, p, "/metrics"); !strings.Contains(b, "ferry_store_full 1") {
		t.Errorf("metrics do not say ferry_store_full 1")
	}
	if _, b := get(t, p, "/v1/tasks?function=slow&status=succeeded"); strings.Count(b, `"id"`) == len(slow) {
		t.Fatalf("every slow task finished before the disk filled: the test proves nothing")
	}
	// Running and queued tasks complete below the reserve.
	waitDone(t, p, append(accepted, slow...))
	if !p.Running() {
		t.Fatal("ferry exited while the disk was full")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	t.Logf("filler removed: %d bytes free", free(t, mnt))
	ferrytest.WaitFor(t, 5*time.Second, "/readyz 200 once space returned", func() bool { return ready(p) == http.StatusOK })
	code, _, b := submit(t, p, payload)
	if code != http.StatusAccepted {
		t.Fatalf("submit after space returned: %d %s", code, b)
	}
	waitDone(t, p, []string{taskID(b)})

	// SIGTERM while below the reserve still ends it, with status 0.
	ferrytest.WaitFor(t, 5*time.Second, "/readyz 503 again", func() bool {
		fill(t, mnt, 6<<20) // Pebble may free some (an old WAL) meanwhile
		return ready(p) == http.StatusServiceUnavailable
	})
	p.Term()
}
