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
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

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
	fill(t, mnt, 6<<20)
	ferrytest.WaitFor(t, 5*time.Second, "/readyz 503 again", func() bool { return ready(p) == http.StatusServiceUnavailable })
	p.Term()
}

// runServe runs `ferry serve -c cfg` to its end (it must not start) and
// returns its exit code and output.
func runServe(t *testing.T, cfg string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferrytest.Binary(t), "serve", "-c", cfg)
	out, _ := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("ferry serve did not exit:\n%s", out)
	}
	if bytes.Contains(out, []byte("panic:")) {
		t.Errorf("ferry serve panicked:\n%s", out)
	}
	return cmd.ProcessState.ExitCode(), string(out)
}

// writeConfig writes cfg (with a free listen address) next to the
// process's and returns its path.
func writeConfig(t *testing.T, dir, name, cfg string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	cfg = strings.ReplaceAll(cfg, "{{listen}}", ferrytest.FreeAddr(t))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// snapshot names every file of dir with its size and modification time.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %d\n", e.Name(), info.Size(), info.ModTime().UnixNano())
	}
	return b.String()
}

// submitN submits n tasks and returns their ids.
func submitN(t *testing.T, p *ferrytest.Proc, n int) []string {
	t.Helper()
	ids := make([]string, 0, n)
	for i := range n {
		code, _, b := submit(t, p, fmt.Appendf(nil, `{"n":%d}`, i))
		if code != http.StatusAccepted {
			t.Fatalf("submit %d: %d %s", i, code, b)
		}
		ids = append(ids, taskID(b))
	}
	return ids
}

// The probe: CURRENT deleted. serve refuses, naming the directory and
// what is missing, and leaves every file as it was.
func TestMissingCurrentIsRefused(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	p := ferrytest.StartConfig(t, config(data, ""))
	submitN(t, p, 50)
	p.Term()
	if err := os.Remove(filepath.Join(data, "CURRENT")); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, data)
	code, out := runServe(t, writeConfig(t, p.Dir, "again.yaml", config(data, "")))
	if code == 0 {
		t.Fatalf("serve started on a directory without CURRENT:\n%s", out)
	}
	if !strings.Contains(out, data) || !strings.Contains(out, "no CURRENT file") {
		t.Errorf("the message does not name the directory and the missing CURRENT:\n%s", out)
	}
	if after := snapshot(t, data); after != before {
		t.Errorf("the directory changed:\nbefore:\n%safter:\n%s", before, after)
	}
}

// A second serve on a held directory says which process holds it.
func TestSecondProcessNamesTheHolder(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	p := ferrytest.StartConfig(t, config(data, ""))
	code, out := runServe(t, writeConfig(t, p.Dir, "second.yaml", config(data, "")))
	if code == 0 {
		t.Fatalf("a second serve started on the same directory:\n%s", out)
	}
	want := fmt.Sprintf("the data directory is locked: another Ferry process (pid %d) holds it", p.Pid())
	if !strings.Contains(out, want) || !strings.Contains(out, data) {
		t.Errorf("the message does not name the directory and %q:\n%s", want, out)
	}
	p.Term()
}

// newestWAL returns the path of the data directory's newest WAL.
func newestWAL(t *testing.T, data string) string {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(data, "*.log"))
	if err != nil || len(logs) == 0 {
		t.Fatalf("no WAL in %s: %v", data, err)
	}
	return logs[len(logs)-1] // zero-padded numbers sort by name
}

// The probe: 4 flipped bytes in the newest WAL. strict refuses to start
// (and changes nothing); tolerate starts with an ERROR naming what was
// dropped.
func TestDamagedWALIsReported(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	p := ferrytest.StartConfig(t, config(data, ""))
	submitN(t, p, 100)
	p.Kill9() // the WAL keeps the records: no flush on the way out

	wal := newestWAL(t, data)
	b, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	end := len(bytes.TrimRight(b, "\x00")) // past the preallocated zeros
	if end < 4096 {
		t.Fatalf("the WAL holds only %d bytes", end)
	}
	for i := range 4 {
		b[end/3+i] ^= 0xff
	}
	if err := os.WriteFile(wal, b, 0o600); err != nil {
		t.Fatal(err)
	}

	before := snapshot(t, data)
	code, out := runServe(t, writeConfig(t, p.Dir, "strict.yaml", config(data, ", wal_recovery: strict")))
	if code == 0 || !strings.Contains(out, "damaged write-ahead log") || !strings.Contains(out, filepath.Base(wal)) {
		t.Fatalf("strict: want a refusal naming %s, got exit %d:\n%s", filepath.Base(wal), code, out)
	}
	if after := snapshot(t, data); after != before {
		t.Errorf("strict changed the directory:\nbefore:\n%safter:\n%s", before, after)
	}

	p.Restart() // tolerate, the default
	log, _ := os.ReadFile(p.LogPath())
	line := ""
	for l := range strings.SplitSeq(string(log), "\n") {
		if strings.Contains(l, `"level":"ERROR"`) && strings.Contains(l, "write-ahead log is damaged") {
			line = l
		}
	}
	if line == "" || !strings.Contains(line, `"dropped_batches":`) || strings.Contains(line, `"dropped_batches":0`) {
		t.Fatalf("no ERROR naming the dropped batches:\n%s", p.LogTail())
	}
	t.Logf("%s", line)
	p.Term()
}

// With the reserve off the disk really fills: the store's write error ends
// the process with one ERROR line and a non-zero exit, never a panic or a
// hang.
func TestStoreWriteErrorEndsTheProcess(t *testing.T) {
	mnt := tmpfs(t, 32<<20)
	p := ferrytest.StartConfig(t, config(filepath.Join(mnt, "data"), ", min_free: \"0\""))
	fill(t, mnt, 1<<20)
	payload := bytes.Repeat([]byte("y"), 64<<10)
	ferrytest.WaitFor(t, 20*time.Second, "ferry to exit on the full disk", func() bool {
		if !p.Running() {
			return true
		}
		// Connection errors once it is gone are expected.
		req, _ := http.NewRequest(http.MethodPost, p.URL("/v1/functions/echo/tasks"), bytes.NewReader(payload))
		req.Header.Set("Authorization", "Bearer demo-key")
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
		return false
	})
	log, _ := os.ReadFile(p.LogPath())
	if !bytes.Contains(log, []byte("the task store failed and Ferry cannot go on")) {
		t.Fatalf("no ERROR line saying why ferry exited:\n%s", p.LogTail())
	}
	if bytes.Contains(log, []byte("panic:")) {
		t.Fatalf("ferry panicked:\n%s", p.LogTail())
	}
	if code := p.ExitCode(); code <= 0 {
		t.Fatalf("exit status %d, want a failure status", code)
	}
}

// The probe: one undecodable task record. GET of it says damaged, every
// list page still answers (with it as damaged), and the other tasks read
// as before; another tenant still gets 404.
func TestDamagedRecordIsReportedNotFatal(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	p := ferrytest.StartConfig(t, config(data, ""))
	ids := submitN(t, p, 30)
	waitDone(t, p, ids)
	p.Term()
	bad := ids[10]
	db, err := pebble.Open(data, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set(append([]byte{'t'}, bad...), []byte{0x01, 0xff, 0xff, 0xff}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	p.Restart()
	code, b := get(t, p, "/v1/tasks/"+bad)
	if code != http.StatusOK || !strings.Contains(b, `"status":"damaged"`) || !strings.Contains(b, `"code":"damaged"`) || !strings.Contains(b, `"function":"echo"`) {
		t.Fatalf("GET the damaged task: %d %s", code, b)
	}
	seen, damaged, cursor := 0, 0, ""
	for page := 0; ; page++ {
		code, b := get(t, p, "/v1/tasks?limit=7&cursor="+cursor)
		if code != http.StatusOK {
			t.Fatalf("list page %d: %d %s", page, code, b)
		}
		seen += strings.Count(b, `"function":"echo"`)
		damaged += strings.Count(b, `"status":"damaged"`)
		_, rest, _ := strings.Cut(b, `"next_cursor":"`)
		cursor, _, _ = strings.Cut(rest, `"`)
		if cursor == "" {
			break
		}
	}
	if seen != len(ids) || damaged != 1 {
		t.Errorf("the list pages hold %d tasks (%d damaged), want %d (1 damaged)", seen, damaged, len(ids))
	}
	if code, b := get(t, p, "/v1/tasks?status=damaged"); code != http.StatusOK || !strings.Contains(b, bad) {
		t.Errorf("list status=damaged: %d %s", code, b)
	}
	if code, b := get(t, p, "/v1/tasks/"+ids[11]); code != http.StatusOK || !strings.Contains(b, `"status":"succeeded"`) {
		t.Errorf("GET a sound task: %d %s", code, b)
	}
	p.Term()
}
