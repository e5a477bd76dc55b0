package backend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/internal/program"
	"github.com/ferrydev/ferry/wire"
)

// StderrTail is how many trailing bytes of an exec backend's stderr are kept
// for the error message.
const StderrTail = 4 << 10

// execWaitDelay bounds how long Wait waits for the command's pipes to close
// after the process exited or was killed (a stray process that left the
// process group may hold them open).
const execWaitDelay = time.Second

// ExecConfig configures an exec backend.
type ExecConfig struct {
	// Command is the program and its arguments; required. A program name
	// without a slash is looked up in PATH when the backend is created.
	Command []string
	// Env is added to the command's environment, after PATH and HOME and
	// before the FERRY_* variables (which cannot be overridden).
	Env map[string]string
	// Dir is the working directory; it must exist. Defaults to Ferry's.
	Dir string
	// User runs the command as another user: a name or "uid[:gid]" (see
	// program.Credential). Ferry must run as root for it. Defaults to
	// Ferry's own user.
	User string
	// Timeout bounds one attempt; on expiry the whole process group is
	// killed with SIGKILL. Defaults to DefaultTimeout (30s).
	Timeout time.Duration
}

// Exec invokes a function as a local process: the payload on stdin, the
// output on stdout (at most MaxOutput bytes), stderr kept for errors. The
// process runs in its own process group, which is killed on timeout and
// when the command exits, and so is every process that carries the run's
// EnvRun mark (descendants that left the group with setsid or a double
// fork): no descendant outlives the invocation. It is safe for concurrent
// use.
type Exec struct {
	path    string
	args    []string
	env     []string // PATH, HOME and cfg.Env, as KEY=VALUE
	dir     string
	cred    *syscall.Credential // nil: Ferry's own user
	timeout time.Duration
}

// NewExec validates cfg and returns an exec backend.
func NewExec(cfg ExecConfig) (*Exec, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, errors.New("exec backend: Command is empty")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("exec backend: Timeout %s is negative", cfg.Timeout)
	}
	if err := program.CheckDir(cfg.Dir); err != nil {
		return nil, fmt.Errorf("exec backend: Dir: %w", err)
	}
	path, err := program.Resolve(cfg.Command[0], cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("exec backend: Command: %w", err)
	}
	cred, err := program.Credential(cfg.User)
	if err != nil {
		return nil, fmt.Errorf("exec backend: User: %w", err)
	}
	e := &Exec{path: path, args: cfg.Command[1:], dir: cfg.Dir, timeout: cfg.Timeout, cred: cred}
	if e.timeout == 0 {
		e.timeout = DefaultTimeout
	}
	for _, k := range []string{"PATH", "HOME"} {
		if v, ok := os.LookupEnv(k); ok {
			e.env = append(e.env, k+"="+v)
		}
	}
	keys := make([]string, 0, len(cfg.Env))
	for k, v := range cfg.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("exec backend: Env: invalid variable %q", k)
		}
		if strings.HasPrefix(k, "FERRY_") || k == "TRACEPARENT" {
			return nil, fmt.Errorf("exec backend: Env: %q is reserved", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e.env = append(e.env, k+"="+cfg.Env[k])
	}
	return e, nil
}

// Invoke runs the command once for inv. A non-zero exit is retryable
// ("exit_status", with the exit status and the tail of stderr), a timeout
// is retryable ("timeout"), more than MaxOutput bytes on stdout is
// permanent ("output_too_large"). A ctx cancelled by the caller is returned
// wrapped, unclassified.
func (e *Exec) Invoke(ctx context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
	actx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()

	cmd := exec.CommandContext(actx, e.path, e.args...)
	cmd.Dir = e.dir
	tag := newRunTag()
	cmd.Env = append(e.environ(inv), EnvRun+"="+tag)
	payload := inv.Payload
	if inv.Batch != nil {
		b, err := EncodeBatch(inv)
		if err != nil {
			return nil, err
		}
		payload = b
	}
	cmd.Stdin = bytes.NewReader(payload)
	stdout := &capWriter{max: MaxOutput}
	stderr := &tailWriter{max: StderrTail}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: e.cred}
	var since atomic.Uint64 // when the command started: its descendants started later
	end := func() error {
		err := killGroup(cmd)
		killTagged(tag, since.Load())
		return err
	}
	cmd.Cancel = end
	cmd.WaitDelay = execWaitDelay

	if err := startChild(cmd.Start, func() int { return cmd.Process.Pid }); err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil, fmt.Errorf("exec backend: %w", ctx.Err())
		}
		err = fmt.Errorf("starting %s: %w", e.path, err)
		if errors.Is(err, syscall.EAGAIN) {
			// fork hit the process limit: Ferry's resource, not the
			// function's failure (EMFILE, ENOMEM... are found by
			// dispatcher.Classify itself).
			return nil, dispatcher.Local("eagain", err)
		}
		return nil, dispatcher.Retryable("exec_start", err, 0)
	}
	if t, err := startTime(cmd.Process.Pid); err == nil {
		since.Store(t)
	}
	err := cmd.Wait()
	forget(cmd.Process.Pid)
	// The group outlives its leader when a child went to the background,
	// and a child that left the group (setsid) outlives both: end them
	// all with the invocation. Under ReapOrphans they are this process's
	// children by now, which is cheaper to read than all of /proc.
	_ = killGroup(cmd)
	if actx.Err() != nil || subreaping.Load() == 0 || !killOrphans(tag) {
		killTagged(tag, since.Load())
	}

	if errors.Is(ctx.Err(), context.Canceled) {
		return nil, fmt.Errorf("exec backend: %w", ctx.Err())
	}
	if actx.Err() != nil {
		return nil, dispatcher.Retryable("timeout",
			fmt.Errorf("%s killed after %s%s: %w", e.path, e.timeout, stderrSuffix(stderr), context.DeadlineExceeded), 0)
	}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		return nil, dispatcher.Retryable("exit_status",
			fmt.Errorf("%s: %s%s", e.path, exitErr.ProcessState, stderrSuffix(stderr)), 0)
	case err != nil && !errors.Is(err, exec.ErrWaitDelay):
		// ErrWaitDelay: the command succeeded but a killed straggler
		// held stdout; what the command wrote is its output.
		return nil, dispatcher.Retryable("exec", fmt.Errorf("%s: %w%s", e.path, err, stderrSuffix(stderr)), 0)
	case stdout.overflow:
		return nil, dispatcher.Permanent("output_too_large",
			fmt.Errorf("%s wrote more than %d bytes to stdout", e.path, MaxOutput))
	}
	return &dispatcher.Result{Output: stdout.buf.Bytes()}, nil
}

// environ is the command's environment for inv.
func (e *Exec) environ(inv *dispatcher.Invocation) []string {
	env := make([]string, 0, len(e.env)+7)
	env = append(env, e.env...)
	ct := inv.ContentType
	switch {
	case inv.Batch != nil:
		ct = BatchContentType
	case ct == "":
		ct = DefaultContentType
	}
	env = append(env,
		"FERRY_EVENT_ID="+inv.ID,
		"FERRY_TENANT="+inv.Tenant,
		"FERRY_FUNCTION="+inv.Function,
		"FERRY_ATTEMPT="+strconv.Itoa(inv.Attempt),
		wire.EnvHops+"="+strconv.Itoa(inv.OutHops()),
		"FERRY_CONTENT_TYPE="+ct,
	)
	if inv.TraceParent != "" {
		env = append(env, "TRACEPARENT="+inv.TraceParent)
	}
	return env
}

// killGroup sends SIGKILL to the command's process group. A group that is
// already gone is not an error.
func killGroup(cmd *exec.Cmd) error {
	if cmd.Process == nil || cmd.Process.Pid <= 0 {
		return nil
	}
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

func stderrSuffix(t *tailWriter) string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(t.bytes()), "\uFFFD"))
	if s == "" {
		return ""
	}
	if t.cut {
		s = "..." + s
	}
	return "; stderr: " + s
}

// capWriter keeps the first max bytes and notes (and discards) the rest,
// never blocking the writer.
type capWriter struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (w *capWriter) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room < len(p) {
		w.overflow = true
		w.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	w.buf.Write(p)
	return len(p), nil
}

// tailWriter keeps the last max bytes written.
type tailWriter struct {
	buf []byte
	max int
	cut bool
}

func (w *tailWriter) Write(p []byte) (int, error) {
	n := len(p)
	if len(p) >= w.max {
		w.cut = w.cut || len(w.buf) > 0 || len(p) > w.max
		w.buf = append(w.buf[:0], p[len(p)-w.max:]...)
		return n, nil
	}
	if over := len(w.buf) + len(p) - w.max; over > 0 {
		w.cut = true
		w.buf = append(w.buf[:0], w.buf[over:]...)
	}
	w.buf = append(w.buf, p...)
	return n, nil
}

func (w *tailWriter) bytes() []byte { return w.buf }
