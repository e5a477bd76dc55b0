// The store refuses or reports damage: a missing CURRENT, a held
// directory, a damaged write-ahead log, a failed write, an undecodable
// record.

package storefault

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/ferrydev/ferry/test/ferrytest"
)

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
