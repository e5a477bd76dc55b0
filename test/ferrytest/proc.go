// Package ferrytest runs the real ferry binary for end-to-end tests: it
// builds it once (with -race), starts it on a free port with a temporary
// store, kills it (-9) or stops it (SIGTERM), restarts it on the same data,
// and fails the test when the server reports a data race or panics.
package ferrytest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/config"
)

// StartTransport, when set (from TestMain, before any test runs), carries
// the readiness checks with which a start waits for the process: a suite
// that checks its exchanges with Ferry sets its checking transport. Nil:
// http.DefaultTransport.
var StartTransport http.RoundTripper

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds ./cmd/ferry with -race (without, when FERRY_TEST_RACE=0)
// once per test process and returns its path. Call Cleanup from TestMain to remove it.
func Binary(t testing.TB) string {
	t.Helper()
	path, err := Build()
	if err != nil {
		t.Fatalf("building ferry: %v", err)
	}
	return path
}

// Build is Binary for TestMain, where there is no test to fail: it builds
// the binary once per test process and returns its path or the build
// error (the same error on every call).
func Build() (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ferry-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ferry")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		args := []string{"build", "-race", "-o", binPath, "./cmd/ferry"}
		if os.Getenv("FERRY_TEST_RACE") == "0" {
			args = slices.Delete(args, 1, 2) // make chaos: timings and memory as shipped
		}
		cmd := exec.Command("go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	return binPath, buildErr
}

// Cleanup removes the binary built by Binary.
func Cleanup() {
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
}

// FreeAddr returns a free loopback address.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Proc is a running (or stopped) ferry process.
type Proc struct {
	t        testing.TB
	Addr     string // host:port of the API
	Dir      string // data and config directory
	config   string
	termWait time.Duration // how long Term waits for the exit
	env      []string      // added to the test's environment
	nofile   int           // RLIMIT_NOFILE of the process (soft and hard); 0: inherited
	cmd      *exec.Cmd
	exited   chan struct{}
	stderr   *os.File
	checked  int // bytes of the log already checked for races and panics
}

// Start writes a config made of a server section (a free port,
// shutdown_timeout 10s) and a store section (a data directory under
// t.TempDir()) followed by body (tenants, functions, triggers, ...) and
// runs `ferry serve` until /readyz answers. Term allows it 20 s to exit.
// The process is killed at the end of the test.
func Start(t testing.TB, body string) *Proc {
	t.Helper()
	const head = "server: { listen: \"{{listen}}\", shutdown_timeout: 10s }\n" +
		"store: { embedded: { path: \"{{data}}\" } }\nlog: { level: info }\n"
	return start(t, head+body, 20*time.Second, nil, 0)
}

// StartConfig is Start with the whole config given: cfg must have its own
// server and store sections, in which {{listen}} stands for a free
// loopback address and {{data}} for a data directory under t.TempDir().
// Term allows the process its server.shutdown_timeout (30 s by default)
// plus 5 s to exit.
func StartConfig(t testing.TB, cfg string) *Proc {
	t.Helper()
	return start(t, cfg, 0, nil, 0)
}

// StartConfigEnv is StartConfig with env ("NAME=value" each) added to the
// environment of the process and of its restarts.
func StartConfigEnv(t testing.TB, cfg string, env ...string) *Proc {
	t.Helper()
	return start(t, cfg, 0, env, 0)
}

// StartConfigNoFile is StartConfig with the process's open-file limit
// (soft and hard, so Ferry cannot raise it) set to nofile, through
// /bin/sh's ulimit: for tests that exhaust file descriptors cheaply.
func StartConfigNoFile(t testing.TB, cfg string, nofile int) *Proc {
	t.Helper()
	return start(t, cfg, 0, nil, nofile)
}

func start(t testing.TB, cfg string, termWait time.Duration, env []string, nofile int) *Proc {
	t.Helper()
	p := &Proc{t: t, Addr: FreeAddr(t), Dir: t.TempDir(), termWait: termWait, env: env, nofile: nofile}
	p.config = filepath.Join(p.Dir, "ferry.yaml")
	cfg = storeSection(t, cfg)
	cfg = strings.NewReplacer("{{listen}}", p.Addr, "{{data}}", filepath.Join(p.Dir, "data")).Replace(cfg)
	if err := os.WriteFile(p.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if p.termWait == 0 {
		// An invalid config keeps the default: ferry refuses it anyway.
		shutdown := config.DefaultShutdownTimeout
		if c, err := config.Load(p.config); err == nil {
			shutdown = c.Server.ShutdownTimeout.D()
		}
		p.termWait = shutdown + 5*time.Second
	}
	t.Cleanup(p.cleanup)
	p.start()
	return p
}

func (p *Proc) start() {
	p.t.Helper()
	var err error
	p.stderr, err = os.OpenFile(filepath.Join(p.Dir, "ferry.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		p.t.Fatal(err)
	}
	fmt.Fprintf(p.stderr, "=== ferrytest: starting ferry serve -c %s\n", p.config)
	p.cmd = exec.Command(Binary(p.t), "serve", "-c", p.config)
	if p.nofile > 0 {
		// The shell execs ferry: the same pid, so signals reach it.
		p.cmd = exec.Command("/bin/sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, p.nofile), Binary(p.t), "serve", "-c", p.config)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	// The log, not the exit status, decides about races (see checkLog), so
	// a tolerated third-party race does not turn a clean exit into 66.
	p.cmd.Env = append(append(os.Environ(), "GORACE=exitcode=0"), p.env...)
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, log *os.File, done chan struct{}) {
		_ = cmd.Wait()
		_ = log.Close()
		close(done)
	}(p.cmd, p.stderr, p.exited)
	client := &http.Client{Timeout: 5 * time.Second, Transport: StartTransport}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			p.t.Fatalf("ferry exited during start-up: %v\n%s", p.cmd.ProcessState, p.LogTail())
		default:
		}
		if resp, err := client.Get(p.URL("/readyz")); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.t.Fatalf("ferry not ready within 30s:\n%s", p.LogTail())
}

func (p *Proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Kill9 kills the process with SIGKILL and waits for it to die.
func (p *Proc) Kill9() {
	p.t.Helper()
	if !p.running() {
		p.t.Fatal("Kill9: ferry is not running")
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.checkLog()
}

// Term sends SIGTERM and fails the test unless the process exits with
// status 0 in time (see Start and StartConfig).
func (p *Proc) Term() {
	p.t.Helper()
	if !p.running() {
		p.t.Fatal("Term: ferry is not running")
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(p.termWait):
		_ = p.cmd.Process.Kill()
		<-p.exited
		p.t.Fatalf("ferry did not exit within %s of SIGTERM:\n%s", p.termWait, p.LogTail())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("ferry exited with status %d after SIGTERM:\n%s", code, p.LogTail())
	}
	p.checkLog()
}

// Signal sends sig to the running process without waiting for anything:
// SIGSTOP freezes it (its sockets stay open, its timers stop) and SIGCONT
// resumes it. Use Kill9 and Term to end it.
func (p *Proc) Signal(sig syscall.Signal) {
	p.t.Helper()
	if !p.running() {
		p.t.Fatalf("Signal %v: ferry is not running", sig)
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("Signal %v: %v", sig, err)
	}
}

// ExitCode is the exit status of the process once it ended (-1 while it
// runs, or when a signal ended it).
func (p *Proc) ExitCode() int {
	if p.running() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Pid is the process id of the running process.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Running reports whether the process is running (a stopped one, after
// SIGSTOP, is running).
func (p *Proc) Running() bool { return p.running() }

// LogPath is the file the process's stdout and stderr go to (restarts
// append to it).
func (p *Proc) LogPath() string { return filepath.Join(p.Dir, "ferry.log") }

// Restart starts the stopped process again on the same config and data.
func (p *Proc) Restart() {
	p.t.Helper()
	if p.running() {
		p.t.Fatal("Restart: ferry is still running")
	}
	p.start()
}

// URL returns the API URL of path.
func (p *Proc) URL(path string) string { return "http://" + p.Addr + path }

func (p *Proc) cleanup() {
	if p.exited != nil && p.running() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.checkLog()
	if p.t.Failed() {
		p.t.Logf("ferry log tail:\n%s", p.LogTail())
	}
}

// checkLog fails the test if the log written since the last check reports
// a data race or a panic.
func (p *Proc) checkLog() {
	all, _ := os.ReadFile(filepath.Join(p.Dir, "ferry.log"))
	log := all[min(p.checked, len(all)):]
	p.checked = len(all)
	for _, report := range raceReports(log) {
		if thirdPartyRace(report) {
			p.t.Logf("tolerated a data race inside %s (no Ferry code involved):\n%.1500s", knownRacy, report)
			continue
		}
		p.t.Errorf("the ferry server reported a data race:\n%.20000s", report)
	}
	if i := bytes.Index(log, []byte("panic:")); i >= 0 {
		p.t.Errorf("the ferry server panicked:\n%s", log[i:min(len(log), i+20000)])
	}
}

// knownRacy is the pinned client library with data races between its own
// goroutines (consumer/push_consumer.go pullMessage, process_queue.go
// takeMessages): v2.1.2 is pinned by the project, so these are tolerated
// when, and only when, no Ferry frame takes part in the race.
const knownRacy = "github.com/apache/rocketmq-client-go/v2"

// raceReports splits the race detector's reports out of a log.
func raceReports(log []byte) []string {
	var out []string
	for {
		i := bytes.Index(log, []byte("WARNING: DATA RACE"))
		if i < 0 {
			return out
		}
		log = log[i:]
		end := bytes.Index(log, []byte("\n=================="))
		if end < 0 {
			end = len(log)
		}
		out = append(out, string(log[:end]))
		log = log[end:]
	}
}

// thirdPartyRace reports whether both accesses of a race report are in the
// known racy client library, with no Ferry frame in either stack. (The
// "Goroutine N created at" sections may name Ferry: that is only where the
// library's goroutine was started.)
func thirdPartyRace(report string) bool {
	var access strings.Builder
	for _, block := range strings.Split(report, "\n\n") {
		if !strings.Contains(block, " created at:") {
			access.WriteString(block)
		}
	}
	a := access.String()
	return strings.Contains(a, knownRacy+"/") && !strings.Contains(a, "github.com/ferrydev/ferry")
}

// LogTail returns the last lines of the server's log.
func (p *Proc) LogTail() string {
	b, err := os.ReadFile(filepath.Join(p.Dir, "ferry.log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-60):], "\n")
}

// WaitFor polls cond every 10 ms until it holds, failing the test after
// timeout.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
