package backend

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/dispatcher"
)

func newExec(t *testing.T, cfg ExecConfig) *Exec {
	t.Helper()
	e, err := NewExec(cfg)
	if err != nil {
		t.Fatalf("NewExec: %v", err)
	}
	return e
}

func TestExecEchoesStdin(t *testing.T) {
	e := newExec(t, ExecConfig{Command: []string{"cat"}})
	inv := testInvocation()
	res, err := e.Invoke(context.Background(), inv)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	if !bytes.Equal(res.Output, inv.Payload) {
		t.Errorf("output = %q, want %q", res.Output, inv.Payload)
	}
}

func TestExecExitStatus(t *testing.T) {
	e := newExec(t, ExecConfig{Command: []string{"sh", "-c", "echo something broke >&2; exit 3"}})
	_, err := e.Invoke(context.Background(), testInvocation())
	c := classify(t, err)
	if c.Code != "exit_status" || c.Permanent {
		t.Errorf("classified %+v, want retryable exit_status", c)
	}
	if !strings.Contains(c.Message, "exit status 3") || !strings.Contains(c.Message, "something broke") {
		t.Errorf("message %q lacks the exit code or stderr", c.Message)
	}
}

func TestExecStderrTail(t *testing.T) {
	// 10 KiB of 'a' then a marker: only the last StderrTail bytes are kept.
	e := newExec(t, ExecConfig{Command: []string{"sh", "-c", `head -c 10240 /dev/zero | tr '\0' a >&2; echo END >&2; exit 1`}})
	_, err := e.Invoke(context.Background(), testInvocation())
	c := classify(t, err)
	if !strings.HasSuffix(c.Message, "END") || len(c.Message) > StderrTail+200 {
		t.Errorf("message (%d bytes) does not end with the stderr tail: ...%q", len(c.Message), c.Message[max(0, len(c.Message)-40):])
	}
}

func TestExecTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	e := newExec(t, ExecConfig{
		Command: []string{"sh", "-c", `sleep 30 & echo $! > "$PIDFILE"; sleep 30`},
		Env:     map[string]string{"PIDFILE": pidFile},
		Timeout: 500 * time.Millisecond,
	})
	start := time.Now()
	_, err := e.Invoke(context.Background(), testInvocation())
	c := classify(t, err)
	if c.Code != "timeout" || c.Permanent {
		t.Errorf("classified %+v, want retryable timeout", c)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Invoke returned after %s", d)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("grandchild pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("grandchild pid %q: %v", b, err)
	}
	waitGone(t, pid, 5*time.Second)
}

func TestExecKillsBackgroundChildrenOnExit(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "bg.pid")
	e := newExec(t, ExecConfig{
		Command: []string{"sh", "-c", `sleep 30 >/dev/null 2>&1 & echo $! > "$PIDFILE"; echo ok`},
		Env:     map[string]string{"PIDFILE": pidFile},
	})
	res, err := e.Invoke(context.Background(), testInvocation())
	if err != nil || string(res.Output) != "ok\n" {
		t.Fatalf("Invoke = %+v, %v", res, err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitGone(t, pid, 5*time.Second)
}

// waitGone polls until pid no longer runs. A zombie counts as gone: it is
// dead, and whether it is reaped depends on the init process of the
// machine running the test.
func waitGone(t *testing.T, pid int, limit time.Duration) {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) || zombie(pid) {
			return
		}
		select {
		case <-poll.C:
		case <-deadline.C:
			t.Fatalf("process %d still running after %s (kill 0: %v)", pid, limit, err)
		}
	}
}

func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// Format: pid (comm) state ...; comm may contain spaces and parens.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

func TestExecEnvironment(t *testing.T) {
	e := newExec(t, ExecConfig{
		Command: []string{"sh", "-c", "env"},
		Env:     map[string]string{"GREETING": "hello world"},
	})
	inv := testInvocation()
	res, err := e.Invoke(context.Background(), inv)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(res.Output), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	want := map[string]string{
		"GREETING":           "hello world",
		"FERRY_EVENT_ID":     "task-123",
		"FERRY_TENANT":       "demo",
		"FERRY_FUNCTION":     "echo",
		"FERRY_ATTEMPT":      "2",
		"FERRY_HOPS":         "4",
		"TRACEPARENT":        inv.TraceParent,
		"FERRY_CONTENT_TYPE": "application/json",
		"PATH":               os.Getenv("PATH"),
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
}

func TestExecEnvironmentIsolated(t *testing.T) {
	t.Setenv("FERRY_TEST_SECRET", "leak")
	e := newExec(t, ExecConfig{Command: []string{"sh", "-c", "env"}})
	res, err := e.Invoke(context.Background(), &dispatcher.Invocation{ID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(res.Output), "FERRY_TEST_SECRET") {
		t.Error("Ferry's environment leaked into the command")
	}
	if !strings.Contains(string(res.Output), "FERRY_CONTENT_TYPE="+DefaultContentType) {
		t.Errorf("default content type missing in %q", res.Output)
	}
}

func TestExecOutputTooLarge(t *testing.T) {
	e := newExec(t, ExecConfig{Command: []string{"head", "-c", strconv.Itoa(MaxOutput + 1), "/dev/zero"}})
	_, err := e.Invoke(context.Background(), testInvocation())
	if c := classify(t, err); c.Code != "output_too_large" || !c.Permanent {
		t.Errorf("classified %+v, want permanent output_too_large", c)
	}
}

func TestExecCallerCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := newExec(t, ExecConfig{Command: []string{"sleep", "30"}})
	_, err := e.Invoke(ctx, testInvocation())
	var de *dispatcher.Error
	if !errors.Is(err, context.Canceled) || errors.As(err, &de) {
		t.Errorf("err = %v, want a wrapped context.Canceled, not classified", err)
	}
}

func TestNewExecValidates(t *testing.T) {
	for name, cfg := range map[string]ExecConfig{
		"no command":   {},
		"not in PATH":  {Command: []string{"ferry-no-such-program"}},
		"reserved env": {Command: []string{"cat"}, Env: map[string]string{"FERRY_TENANT": "x"}},
		"bad env":      {Command: []string{"cat"}, Env: map[string]string{"A=B": "x"}},
		"negative":     {Command: []string{"cat"}, Timeout: -1},
	} {
		if _, err := NewExec(cfg); err == nil {
			t.Errorf("%s: NewExec accepted %+v", name, cfg)
		}
	}
}
