// Package async is the async half of `make bench` (issue 5, workloads 1–4):
// Ferry's task API and dispatcher against hibiken/asynq on the same Redis
// and against this machine's ceilings, then Ferry alone under a growing
// backlog and under 1,000 tenants.
//
// The systems under test run in processes of their own (this binary
// re-executed in a child role, see Child), so that CPU time
// (/proc/PID/stat) and memory (/proc/PID/status) are counted per process.
// The load generator is the calling process, on the same cores. Every task's
// payload is {"t": unix-nano}: the instant latency counts from, which the
// no-op backends subtract from the instant they start.
package async

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/test/bench/results"
)

// Config configures Run.
type Config struct {
	// Out is the results file (JSON lines, results.Append). Required.
	Out string
	// Profiles is the directory of the pprof files of Ferry and their
	// `go tool pprof -top` text. Required.
	Profiles string
	// Runs is the number of interleaved runs per comparison. Defaults to 3.
	Runs int
	// N is the number of tasks of the throughput workload. Defaults to
	// 100,000.
	N int
	// Quick shrinks every size (N ≤ 2,000, backlogs 1k and 10k, 100
	// tenants, seconds-long phases) for a smoke run of under a minute; its
	// figures mean nothing.
	Quick bool
	// Progress receives one line per step. Defaults to discarding them.
	Progress func(format string, args ...any)
	// RedisAddr is the Redis that asynq uses (database 15 only, flushed
	// before every asynq run). Defaults to 127.0.0.1:6379.
	RedisAddr string
}

// sizes are the workloads' dimensions.
type sizes struct {
	n          int           // throughput tasks
	clients    int           // concurrent submitters of closed loops
	latency    time.Duration // measured part of each latency run
	warmup     time.Duration // unmeasured start of each latency run
	wrk        time.Duration // wrk's -d
	backlogs   []int         // scale: tasks queued beforehand
	scaleTasks int           // scale: measured burst
	probeRate  float64       // scale: open-loop latency probe, tasks/s
	probe      time.Duration // scale: probe duration
	tenants    int           // fairness
	fairTasks  int           // fairness: all tenants' tasks
	clusterN   int           // cluster: tasks of each throughput run
	clusterLat time.Duration // cluster: measured part of each latency run
}

func sizesFor(cfg Config) sizes {
	if cfg.Quick {
		return sizes{
			n: min(cfg.N, 2000), clients: 32, latency: 3 * time.Second, warmup: 500 * time.Millisecond,
			wrk: 2 * time.Second, backlogs: []int{1000, 10000}, scaleTasks: 2000, probeRate: 500, probe: time.Second,
			tenants: 100, fairTasks: 2000, clusterN: min(cfg.N, 2000), clusterLat: 2 * time.Second,
		}
	}
	return sizes{
		n: cfg.N, clients: 32, latency: 15 * time.Second, warmup: time.Second,
		wrk: 10 * time.Second, backlogs: []int{1000, 100000, 1000000}, scaleTasks: 20000, probeRate: 1000, probe: 5 * time.Second,
		tenants: 1000, fairTasks: 20000, clusterN: cfg.N / 5, clusterLat: 10 * time.Second,
	}
}

// workers is Ferry's dispatcher.workers and every max_concurrency, and the
// HTTP function's: the same as asynq's Concurrency.
const workers = asynqConcurrency

// bench is one Run's state.
type bench struct {
	cfg      Config
	sz       sizes
	tmp      string               // scratch directory, removed at the end
	redisPID int                  // 0 when not found: no Redis CPU figures
	peak     map[string][]float64 // system → tasks_per_s of its throughput runs
}

// Run runs workloads 1–4 (throughput, latency, scale, fairness) in that
// order, appending one results.Result per system and run to cfg.Out as it
// goes. Latency needs throughput's peak rates, so the workloads always run
// together. It installs wrk from Debian when it is missing.
func Run(ctx context.Context, cfg Config) error {
	b, cleanup, err := newBench(cfg, true)
	if err != nil {
		return err
	}
	defer cleanup()
	return b.runWorkloads(ctx, []workload{
		{results.Throughput, b.throughput},
		{results.Latency, b.latency},
		{results.Scale, b.scale},
		{results.Fairness, b.fairness},
	})
}

// workload is one named part of a Run.
type workload struct {
	name string
	run  func(context.Context) error
}

// newBench applies cfg's defaults, installs wrk when it is missing and
// needed, and makes the scratch directory, which cleanup removes.
func newBench(cfg Config, needWrk bool) (b *bench, cleanup func(), err error) {
	if cfg.Out == "" || cfg.Profiles == "" {
		return nil, nil, errors.New("async bench: Config.Out and Config.Profiles are required")
	}
	if cfg.Runs <= 0 {
		cfg.Runs = 3
	}
	if cfg.N <= 0 {
		cfg.N = 100000
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string, ...any) {}
	}
	if cfg.RedisAddr == "" {
		cfg.RedisAddr = "127.0.0.1:6379"
	}
	if err := os.MkdirAll(cfg.Profiles, 0o755); err != nil {
		return nil, nil, fmt.Errorf("async bench: %w", err)
	}
	if needWrk {
		if err := ensureWrk(cfg.Progress); err != nil {
			return nil, nil, err
		}
	}
	tmp, err := os.MkdirTemp("", "ferry-bench-async-")
	if err != nil {
		return nil, nil, fmt.Errorf("async bench: %w", err)
	}
	b = &bench{cfg: cfg, sz: sizesFor(cfg), tmp: tmp, redisPID: redisPID(cfg.RedisAddr), peak: map[string][]float64{}}
	if b.redisPID == 0 {
		cfg.Progress("redis-server not found among local processes: no Redis CPU figures")
	}
	return b, func() { os.RemoveAll(tmp) }, nil
}

// runWorkloads runs ws in order, announcing how long each took.
func (b *bench) runWorkloads(ctx context.Context, ws []workload) error {
	for _, w := range ws {
		start := time.Now()
		if err := w.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", w.name, err)
		}
		b.cfg.Progress("%s done in %s", w.name, time.Since(start).Round(time.Second))
	}
	return nil
}

// record appends one result.
func (b *bench) record(workload, system string, run int, params map[string]string, m map[string]float64) error {
	if err := results.Append(b.cfg.Out, results.Result{
		Workload: workload, System: system, Params: params, Run: run, Metrics: m,
	}); err != nil {
		return fmt.Errorf("record %s %s: %w", workload, system, err)
	}
	return nil
}

// step announces one step: "throughput run 2/3: asynq (default)…".
func (b *bench) step(workload string, run int, what string) {
	b.cfg.Progress("%s run %d/%d: %s…", workload, run, b.cfg.Runs, what)
}

// runDir makes a fresh scratch directory; the caller removes it.
func (b *bench) runDir() (string, error) {
	d, err := os.MkdirTemp(b.tmp, "run-")
	if err != nil {
		return "", fmt.Errorf("scratch dir: %w", err)
	}
	return d, nil
}

// removeSynced removes a run's scratch directory and syncs the file
// system, so that the next run does not pay for this one's writeback and
// deletes (removing a store of 1M tasks, a GB, kept the disk busy for the
// fsyncs of the run after it).
func removeSynced(dir string) {
	_ = os.RemoveAll(dir)
	syscall.Sync()
}

// completionTimeout bounds how long n tasks may take to finish.
func completionTimeout(n int) time.Duration {
	return max(2*time.Minute, time.Duration(n)*5*time.Millisecond)
}

// median of xs (0 when empty).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// itoa is strconv.Itoa, for Params.
func itoa(n int) string { return strconv.Itoa(n) }

// ensureWrk installs Debian's wrk when it is not on PATH.
func ensureWrk(progress func(string, ...any)) error {
	if _, err := exec.LookPath("wrk"); err == nil {
		return nil
	}
	progress("wrk not found: apt-get install -y wrk")
	install := func() error {
		out, err := exec.Command("apt-get", "install", "-y", "wrk").CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get install -y wrk: %w\n%s", err, out)
		}
		return nil
	}
	if err := install(); err != nil {
		if out, uerr := exec.Command("apt-get", "update").CombinedOutput(); uerr != nil {
			return fmt.Errorf("%w; apt-get update: %w\n%s", err, uerr, out)
		}
		if err := install(); err != nil {
			return err
		}
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("wrk still not on PATH after apt-get install: %w", err)
	}
	return nil
}
