package chaos

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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

// storeConfig is a whole config: the embedded store at data with extra
// keys in store.embedded, then serveConfig's tenant and function.
func storeConfig(data, extra, url string) string {
	return fmt.Sprintf("server: { listen: \"{{listen}}\", shutdown_timeout: 10s }\n"+
		"store: { embedded: { path: %q%s } }\nlog: { level: info }\n", data, extra) + serveConfig(url, "", "")
}

// postClient keeps a connection per submitting goroutine alive (the
// default keeps 2 per host, so many submitters would dial and close a
// connection per request: a cost of the test rig, not of the service).
var postClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// post submits seq once and returns the status (0: no answer).
func post(p *ferrytest.Proc, seq int) int {
	req, _ := http.NewRequest(http.MethodPost, p.URL("/v1/functions/f/tasks"), bytes.NewReader(payload(seq)))
	req.Header.Set("Authorization", "Bearer chaos-key-0001")
	req.Header.Set("Content-Type", "application/json")
	resp, err := postClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// mountTmpfs mounts a tmpfs of size bytes and unmounts it at the end.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Fatalf("mount a tmpfs (tests run as root): %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize)
}

// fillTo grows dir/filler until less than left bytes are free.
func fillTo(t *testing.T, dir string, left int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for freeBytes(t, dir) >= left {
		// ENOSPC can be transient on a tmpfs (Pebble's WAL preallocation).
		if _, err := f.Write(chunk); err != nil && !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("filler: %v", err)
		}
	}
	return path
}

// rowStoreFull: submits while a filler takes the tmpfs below the
// store's reserve; 202 is accepted, 507 store_full refused (not lost);
// the filler is removed after a while and submits go on.
func rowStoreFull(t *testing.T, tab *Table) {
	row := Row{Fault: "store full (store.embedded.min_free, 507 store_full)", Target: "embedded store on a 128 MiB tmpfs"}
	defer func() { tab.Add(row) }()
	l := NewLedger()
	be := NewBackend(l, slowly(5*time.Millisecond))
	defer be.Close()
	mnt := mountTmpfs(t, 128<<20)
	p := ferrytest.StartConfig(t, storeConfig(filepath.Join(mnt, "data"), ", min_free: 8MiB", be.URL()))

	var (
		next, refused, other atomic.Int64
		removedAt            atomic.Int64 // unix nanos; 0 while the filler is there
		firstAfter           atomic.Int64 // the first 202 after the removal
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				seq := int(next.Add(1))
				switch code := post(p, seq); code {
				case http.StatusAccepted:
					l.Accept(seq)
					if r := removedAt.Load(); r != 0 {
						firstAfter.CompareAndSwap(0, time.Now().UnixNano())
					}
				case http.StatusInsufficientStorage:
					refused.Add(1)
				default:
					other.Add(1)
				}
			}
		})
	}
	if !waitUntil(20*time.Second, func() bool { return l.Accepted() >= 300 }) {
		t.Error("300 submits not accepted before the fill")
	}
	fillAt := time.Now()
	filler := fillTo(t, mnt, 6<<20) // below the 8 MiB reserve
	before := refused.Load()
	if !waitUntil(10*time.Second, func() bool { fillTo(t, mnt, 6<<20); return refused.Load() > before+50 }) {
		t.Error("no 507 store_full after the fill")
	}
	// Full for 5 s, the filler topped up (a flush frees old WALs).
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		fillTo(t, mnt, 6<<20)
	}
	accAtRemoval := l.Accepted()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	removedAt.Store(time.Now().UnixNano())
	if !waitUntil(30*time.Second, func() bool { return firstAfter.Load() != 0 && l.Accepted() >= accAtRemoval+300 }) {
		t.Error("submits not accepted again within 30 s of the removal")
	}
	cancel()
	wg.Wait()
	if f := firstAfter.Load(); f != 0 {
		row.Recovery = time.Unix(0, f).Sub(fillAt)
	}
	settled := settle(l, 2*time.Second, 2*time.Minute)
	p.Term()
	row.Count = l.Count()
	row.Status = verdict(row.Count, 0, settled)
	if other.Load() > 0 {
		row.Status = fmt.Sprintf("FAIL: %d submits answered neither 202 nor 507", other.Load())
	}
	row.Note = fmt.Sprintf("%d submits refused 507 (not accepted, not lost); full 5 s; recovery = fill → first 202 after the filler's removal", refused.Load())
	if row.Status != "ok" {
		t.Error(row.Status)
	}
}

// walDamage is the ERROR line of a tolerated damaged WAL ("" if none).
func walDamage(p *ferrytest.Proc) string {
	log, _ := os.ReadFile(p.LogPath())
	line := ""
	for l := range strings.SplitSeq(string(log), "\n") {
		if strings.Contains(l, `"level":"ERROR"`) && strings.Contains(l, "write-ahead log is damaged") {
			line = l
		}
	}
	return line
}

// rowDamagedWAL: tasks accepted, kill -9, 4 bytes flipped a third into
// the newest WAL's used part, restart with wal_recovery: tolerate (the
// default). The rule: the row passes when every accepted task is
// delivered, or when the loss is reported (an ERROR line naming
// dropped_batches > 0) — a loss never goes unreported.
func rowDamagedWAL(t *testing.T, tab *Table) {
	row := Row{Fault: "damaged store files: 4 bytes flipped in the newest WAL, wal_recovery: tolerate", Target: "embedded store"}
	defer func() { tab.Add(row) }()
	l := NewLedger()
	be := NewBackend(l, slowly(100*time.Millisecond))
	defer be.Close()
	data := filepath.Join(t.TempDir(), "data")
	p := ferrytest.StartConfig(t, storeConfig(data, "", be.URL()))
	s := newSubmitter(p, l)
	s.submitAll(0, 1000, 8, nil)
	p.Kill9() // most tasks still queued (16 at a time, 100 ms each)

	logs, _ := filepath.Glob(filepath.Join(data, "*.log"))
	if len(logs) == 0 {
		t.Fatalf("no WAL in %s", data)
	}
	wal := logs[len(logs)-1]
	b, err := os.ReadFile(wal)
	if err != nil {
		t.Fatal(err)
	}
	end := len(bytes.TrimRight(b, "\x00"))
	for i := range 4 {
		b[end/3+i] ^= 0xff
	}
	if err := os.WriteFile(wal, b, 0o600); err != nil {
		t.Fatal(err)
	}
	be.SetBehaviour(nil)
	faultAt := time.Now()
	p.Restart()
	row.Recovery = recovery(l, faultAt, time.Now(), 30*time.Second)
	// Lost tasks never come: settle ends at its timeout then.
	settle(l, 2*time.Second, 20*time.Second)
	p.Term()
	row.Count = l.Count()
	line := walDamage(p)
	reported := line != "" && strings.Contains(line, `"dropped_batches":`) && !strings.Contains(line, `"dropped_batches":0`)
	dropped := "none"
	if i := strings.Index(line, `"dropped_batches":`); i >= 0 {
		dropped = strings.SplitN(strings.SplitN(line[i+len(`"dropped_batches":`):], ",", 2)[0], "}", 2)[0]
	}
	switch {
	case row.Unexpected > 0:
		row.Status = "FAIL: unexpected"
	case row.Lost == 0 || reported:
		row.Status = "ok"
	default:
		row.Status = "FAIL: loss not reported"
	}
	row.Note = fmt.Sprintf("lost = acknowledged, then dropped with the WAL tail; the ERROR log names dropped_batches=%s; recovery = restart → first delivery; passes because the loss is reported, not silent; duplicates = deliveries whose completion was in the dropped tail", dropped)
	if row.Status != "ok" {
		t.Errorf("%s\n%s", row.Status, p.LogTail())
	}
}

// rowMissingCurrent: CURRENT deleted; serve must refuse with a message
// naming the directory and the missing file, and change nothing.
func rowMissingCurrent(t *testing.T, tab *Table) {
	row := Row{Fault: "damaged store files: CURRENT missing", Target: "embedded store"}
	defer func() { tab.Add(row) }()
	l := NewLedger()
	be := NewBackend(l, nil)
	defer be.Close()
	data := filepath.Join(t.TempDir(), "data")
	cfg := storeConfig(data, "", be.URL())
	p := ferrytest.StartConfig(t, cfg)
	newSubmitter(p, l).submitAll(0, 200, 8, nil)
	settled := settle(l, time.Second, time.Minute)
	p.Term()
	if err := os.Remove(filepath.Join(data, "CURRENT")); err != nil {
		t.Fatal(err)
	}
	before := dirSnapshot(t, data)
	path := filepath.Join(p.Dir, "again.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(cfg, "{{listen}}", ferrytest.FreeAddr(t))), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, ferrytest.Binary(t), "serve", "-c", path)
	out, _ := cmd.CombinedOutput()
	row.Count = l.Count()
	var bad []string
	if ctx.Err() != nil || cmd.ProcessState.ExitCode() == 0 {
		bad = append(bad, "serve started without CURRENT")
	}
	if !strings.Contains(string(out), data) || !strings.Contains(string(out), "no CURRENT file") {
		bad = append(bad, "message does not name the directory and the missing CURRENT")
	}
	if dirSnapshot(t, data) != before {
		bad = append(bad, "files changed")
	}
	row.Status = verdict(row.Count, 0, settled)
	if len(bad) > 0 {
		row.Status = "FAIL: " + strings.Join(bad, ", ")
	}
	row.Note = "restart refused, exit non-zero, message names the directory and \"no CURRENT file\"; every file untouched (names, sizes, mtimes)"
	if row.Status != "ok" {
		t.Errorf("%s\n%s", row.Status, out)
	}
}

// dirSnapshot names every file of dir with its size and mtime.
func dirSnapshot(t *testing.T, dir string) string {
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
