package backend

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readPid waits for a pid file the command writes and returns its pid.
func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			return pid
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid file %s: %v (content %q)", path, err, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestExecTimeoutKillsEveryDescendant is the probe of issue 15: a setsid
// grandchild outlived the timeout. The function starts one process that
// left the group (setsid) and one that was also orphaned (a double fork),
// then hangs; after the timeout all are gone.
func TestExecTimeoutKillsEveryDescendant(t *testing.T) {
	dir := t.TempDir()
	leaderPid, setsidPid, orphanPid := filepath.Join(dir, "leader.pid"), filepath.Join(dir, "setsid.pid"), filepath.Join(dir, "orphan.pid")
	e := newExec(t, ExecConfig{
		Command: []string{"sh", "-c", `echo $$ > "$L.tmp"; mv "$L.tmp" "$L"
setsid sleep 300 & echo $! > "$A.tmp"; mv "$A.tmp" "$A"
(setsid sleep 301 & echo $! > "$B.tmp"; mv "$B.tmp" "$B")
sleep 300`},
		Env:     map[string]string{"L": leaderPid, "A": setsidPid, "B": orphanPid},
		Timeout: 500 * time.Millisecond,
	})
	_, err := e.Invoke(context.Background(), testInvocation())
	if c := classify(t, err); c.Code != "timeout" {
		t.Errorf("classified %+v, want timeout", c)
	}
	for _, f := range []string{leaderPid, setsidPid, orphanPid} {
		pid := readPid(t, f)
		waitGone(t, pid, 5*time.Second)
	}
}

// TestExecExitKillsSetsidDescendant: a daemon started with setsid does not
// outlive a run that exits normally either.
func TestExecExitKillsSetsidDescendant(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "daemon.pid")
	e := newExec(t, ExecConfig{
		Command: []string{"sh", "-c", `setsid sleep 300 >/dev/null 2>&1 & echo $! > "$P.tmp"; mv "$P.tmp" "$P"; echo ok`},
		Env:     map[string]string{"P": pidFile},
	})
	res, err := e.Invoke(context.Background(), testInvocation())
	if err != nil || string(res.Output) != "ok\n" {
		t.Fatalf("Invoke = %+v, %v", res, err)
	}
	waitGone(t, readPid(t, pidFile), 5*time.Second)
}

// TestReapOrphans: with ReapOrphans running, Ferry is the child subreaper,
// so a process orphaned by a double fork is reparented to Ferry, killed
// with its run and reaped: no zombie is left, and the backend's own
// children are still waited for by os/exec.
func TestReapOrphans(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		errc <- ReapOrphans(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if err := <-errc; err != nil {
			t.Errorf("ReapOrphans: %v", err)
		}
	})

	pidFile := filepath.Join(t.TempDir(), "orphan.pid")
	e := newExec(t, ExecConfig{
		// The orphan's parent, once the subshell is gone, is the output.
		Command: []string{"sh", "-c", `(setsid sleep 300 >/dev/null 2>&1 & echo $! > "$P.tmp"; mv "$P.tmp" "$P")
cut -d' ' -f4 "/proc/$(cat "$P")/stat"`},
		Env:     map[string]string{"P": pidFile},
		Timeout: 10 * time.Second,
	})
	for i := range 3 { // the backend's own children keep working alongside the reaper
		res, err := e.Invoke(context.Background(), testInvocation())
		if err != nil {
			t.Fatalf("Invoke %d: %v", i, err)
		}
		if got, want := strings.TrimSpace(string(res.Output)), strconv.Itoa(os.Getpid()); got != want {
			t.Errorf("Invoke %d: the orphan's parent is %s, want Ferry (%s)", i, got, want)
		}
		pid := readPid(t, pidFile)
		waitReaped(t, pid, 5*time.Second)
		if err := os.Remove(pidFile); err != nil {
			t.Fatal(err)
		}
	}
}

// waitReaped polls until pid is gone entirely: not running, not a zombie.
func waitReaped(t *testing.T, pid int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := syscall.Kill(pid, 0)
		if errors.Is(err, syscall.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still there after %s (zombie: %v)", pid, limit, zombie(pid))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestExecUser runs the command as nobody: it cannot read Ferry's
// environment through /proc/$PPID/environ, which it can as Ferry's user.
func TestExecUser(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("TestExecUser needs root")
		}
		t.Skip("needs root")
	}
	probe := []string{"sh", "-c", `id -u; if cat /proc/$PPID/environ >/dev/null 2>&1; then echo readable; else echo denied; fi`}
	tests := []struct {
		user string
		want string
	}{
		{"", "0\nreadable\n"},
		{"nobody", "65534\ndenied\n"},
		{"65534:65534", "65534\ndenied\n"},
	}
	for _, tt := range tests {
		e := newExec(t, ExecConfig{Command: probe, User: tt.user})
		res, err := e.Invoke(context.Background(), testInvocation())
		if err != nil {
			t.Fatalf("user %q: Invoke: %v", tt.user, err)
		}
		if string(res.Output) != tt.want {
			t.Errorf("user %q: output %q, want %q", tt.user, res.Output, tt.want)
		}
	}
	if _, err := NewExec(ExecConfig{Command: []string{"cat"}, User: "ferry-no-such-user"}); err == nil {
		t.Error("NewExec accepted an unknown user")
	}
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		in   string
		want procStat
		ok   bool
	}{
		{"42 (sleep) S 7 42 42 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 12345 1000 10", procStat{'S', 7, 12345}, true},
		{"42 (a) b) (c) Z 1 42 42 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 99 0 0", procStat{'Z', 1, 99}, true},
		{"42 (short) S 1", procStat{}, false},
		{"garbage", procStat{}, false},
	}
	for _, tt := range tests {
		got, ok := parseStat(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseStat(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
