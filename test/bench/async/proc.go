package async

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// childAddrs is the one JSON line a child prints on stdout once it serves:
// where its API (Ferry only) and its stats listener are.
type childAddrs struct {
	API   string `json:"api,omitempty"`
	Stats string `json:"stats"`
}

// announce prints a child's addresses for the generator.
func announce(a childAddrs) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(b, '\n'))
	return err
}

// proc is a child process of this binary in one role. stop ends it; it is
// idempotent, and every caller defers it, so a child never outlives the
// step that started it.
type proc struct {
	role    string
	cmd     *exec.Cmd
	addrs   childAddrs
	started time.Time
	exited  chan struct{} // closed once the process is reaped
	waitErr error         // set before exited closes

	stopOnce sync.Once
	stopErr  error
}

// startChild re-executes this binary as role with args and waits (up to
// timeout, or ctx) for the child to announce its addresses. The child's
// stderr is ours; it is killed if this process dies (Pdeathsig).
func startChild(ctx context.Context, timeout time.Duration, role string, args ...string) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("start %s: find this executable: %w", role, err)
	}
	cmd := exec.Command(exe, append([]string{role}, args...)...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	p := &proc{role: role, cmd: cmd, exited: make(chan struct{}), started: time.Now()}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", role, err)
	}
	lines := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		r := bufio.NewReader(out)
		line, err := r.ReadString('\n')
		if err == nil {
			lines <- line
		}
		close(lines)
		_, _ = io.Copy(os.Stderr, r) // anything else the child prints
	}()
	go func() {
		<-drained // Wait closes the pipe: read it to the end first
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case line, ok := <-lines:
		if !ok {
			<-p.exited
			return nil, fmt.Errorf("start %s: exited before serving: %v", role, p.waitErr)
		}
		if err := json.Unmarshal([]byte(line), &p.addrs); err != nil {
			p.stop()
			return nil, fmt.Errorf("start %s: bad announcement %q: %w", role, line, err)
		}
		return p, nil
	case <-timer.C:
		p.stop()
		return nil, fmt.Errorf("start %s: not serving after %s", role, timeout)
	case <-ctx.Done():
		p.stop()
		return nil, fmt.Errorf("start %s: %w", role, ctx.Err())
	}
}

// pid is the child's process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop asks the child to end (SIGTERM), kills it after 20 s, and reaps it.
// It reports a failure exit only when the child ended on its own or failed
// its graceful stop.
func (p *proc) stop() error {
	p.stopOnce.Do(func() {
		select {
		case <-p.exited:
			p.stopErr = fmt.Errorf("%s exited early: %v", p.role, p.waitErr)
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			if p.waitErr != nil {
				p.stopErr = fmt.Errorf("%s: %w", p.role, p.waitErr)
			}
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
			p.stopErr = fmt.Errorf("%s did not stop within 20s after SIGTERM; killed", p.role)
		}
	})
	return p.stopErr
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const clockTicks = 100

// cpuTime returns the user+system CPU time the process pid has used.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	// Fields after the command name (which may hold spaces and parens):
	// state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("cpu time of %d: malformed stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu time of %d: malformed stat", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("cpu time of %d: %w", pid, err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// memMB returns a memory figure of /proc/PID/status (VmRSS, VmHWM) in MB.
func memMB(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("%s of %d: %w", field, pid, err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		f := strings.Fields(rest) // "123456 kB"
		if len(f) == 0 {
			break
		}
		kb, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("%s of %d: %w", field, pid, err)
		}
		return kb / 1024, nil
	}
	return 0, fmt.Errorf("%s of %d: not in /proc/%d/status", field, pid, pid)
}

// redisPID finds the redis-server process serving addr's port, or 0.
func redisPID(addr string) int {
	_, port, _ := net.SplitHostPort(addr)
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	found := 0
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join(d, "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "redis-server" {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(d))
		cmdline, _ := os.ReadFile(filepath.Join(d, "cmdline"))
		if port != "" && bytes.Contains(cmdline, []byte(":"+port)) {
			return pid
		}
		if found == 0 {
			found = pid
		}
	}
	return found
}

// cpuMeter measures the CPU used by a set of processes over one interval.
type cpuMeter struct {
	pids  map[string]int // metric suffix → pid
	start map[string]time.Duration
}

// newCPUMeter starts measuring the named processes; a pid of 0 is skipped.
func newCPUMeter(pids map[string]int) *cpuMeter {
	m := &cpuMeter{pids: map[string]int{}, start: map[string]time.Duration{}}
	for name, pid := range pids {
		if pid == 0 {
			continue
		}
		if t, err := cpuTime(pid); err == nil {
			m.pids[name], m.start[name] = pid, t
		}
	}
	return m
}

// perK adds cpu_ms_per_1k_<name> for every process to metrics: the CPU
// milliseconds it used since newCPUMeter per 1,000 of n tasks.
func (m *cpuMeter) perK(metrics map[string]float64, n int) {
	for name, pid := range m.pids {
		t, err := cpuTime(pid)
		if err != nil || n == 0 {
			continue
		}
		metrics["cpu_ms_per_1k_"+name] = float64((t - m.start[name]).Milliseconds()) * 1000 / float64(n)
	}
}

// schedTimes returns how long the thread tid of process pid has run and
// waited on a run queue (/proc/PID/task/TID/schedstat, in ns).
func schedTimes(pid, tid int) (run, wait time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/schedstat", pid, tid))
	if err != nil {
		return 0, 0, fmt.Errorf("schedstat of %d/%d: %w", pid, tid, err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("schedstat of %d/%d: malformed %q", pid, tid, b)
	}
	r, err1 := strconv.ParseInt(f[0], 10, 64)
	w, err2 := strconv.ParseInt(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("schedstat of %d/%d: %w", pid, tid, err)
	}
	return time.Duration(r), time.Duration(w), nil
}

// machineTimes returns the busy and total CPU time of every CPU together
// (/proc/stat; idle and iowait are not busy), in USER_HZ ticks.
func machineTimes() (busy, total int64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: malformed first line %q", line)
	}
	for i, s := range f[1:9] { // user nice system idle iowait irq softirq steal
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		total += v
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return busy, total, nil
}
