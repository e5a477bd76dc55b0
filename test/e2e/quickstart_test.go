package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuickstart serves config/examples/quickstart.yaml (on a free port and
// a temp data dir) and runs README.md's quick start block against it; a
// README without the block falls back to the same calls made in Go.
func TestQuickstart(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "config", "examples", "quickstart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	for _, s := range []string{"127.0.0.1:8080", "./data"} {
		if !strings.Contains(cfg, s) {
			t.Fatalf("quickstart.yaml does not contain %q (design.md pins it)", s)
		}
	}
	cfg = strings.NewReplacer("127.0.0.1:8080", "{{listen}}", "./data", "{{data}}").Replace(cfg)
	f := startFerry(t, cfg)

	block, ok := readmeQuickstart(t)
	if !ok {
		t.Log("README.md has no quickstart block: making the same calls in Go")
		f.key = "demo-key"
		id := f.submitOK(t, "echo", `{"hello":"world"}`, nil)
		v := f.waitFinal(t, id)
		if v.Status != "succeeded" || !sameJSON(v.Output, []byte(`{"hello":"world"}`)) {
			t.Fatalf("task %+v (output %s), want succeeded with output {\"hello\":\"world\"}", v, v.Output)
		}
		return
	}
	if !strings.Contains(block, "127.0.0.1:8080") {
		t.Fatalf("README's quickstart block does not talk to 127.0.0.1:8080:\n%s", block)
	}
	// Same commands, on the harness's port, with their scratch files in
	// the test's temp dir rather than a /tmp shared with other runs.
	tmp := t.TempDir()
	script := strings.NewReplacer("127.0.0.1:8080", f.Addr, "/tmp/", tmp+"/").Replace(block)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = tmp
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("README quick start failed: %v\nscript:\n%s\nstdout:\n%s\nstderr:\n%s", err, script, stdout.String(), stderr.String())
	}
	// The block ends by printing the task: it must be a succeeded task
	// whose output is the submitted object.
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var v taskView
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &v); err != nil {
		t.Fatalf("the quick start's last line is not a task: %v\nstdout:\n%s", err, stdout.String())
	}
	if v.Status != "succeeded" || v.Function != "echo" || !sameJSON(v.Output, []byte(`{"hello":"world"}`)) {
		t.Fatalf("the quick start printed %s, want a succeeded echo task with output {\"hello\":\"world\"}", lines[len(lines)-1])
	}
	f.key = "demo-key"
	if got := f.get(t, v.ID); got.Status != "succeeded" {
		t.Errorf("GET %s: status %s, want succeeded", v.ID, got.Status)
	}
}

// readmeQuickstart returns the code of README.md's fenced block between
// <!-- quickstart:begin --> and <!-- quickstart:end -->.
func readmeQuickstart(t *testing.T) (string, bool) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		return "", false
	}
	s := string(raw)
	_, rest, ok := strings.Cut(s, "<!-- quickstart:begin -->")
	if !ok {
		return "", false
	}
	section, _, ok := strings.Cut(rest, "<!-- quickstart:end -->")
	if !ok {
		t.Fatal("README.md: quickstart:begin without quickstart:end")
	}
	var code []string
	in := false
	for _, l := range strings.Split(section, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			in = !in
			continue
		}
		if in {
			code = append(code, l)
		}
	}
	if len(code) == 0 {
		t.Fatal("README.md: the quickstart section has no fenced code")
	}
	return strings.Join(code, "\n"), true
}
