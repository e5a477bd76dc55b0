package async

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/embedded"
	"github.com/ferrydev/ferry/test/bench/results"
)

// preloadWorkers is the number of concurrent Enqueues of a preload (they
// share WAL fsyncs through Pebble's group commit).
const preloadWorkers = 64

// preload enqueues n tasks straight into the embedded store at dir (no
// Ferry running), from preloadWorkers goroutines. task gives the i-th
// task's tenant, ready time and payload; its function is "noop".
func preload(ctx context.Context, dir string, n int, task func(i int) (tenant string, readyAt time.Time, payload []byte)) (time.Duration, error) {
	start := time.Now()
	q, err := embedded.Open(dir, embedded.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, fmt.Errorf("preload: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range preloadWorkers {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n && ctx.Err() == nil; i = int(next.Add(1)) - 1 {
				id, err := uuid.NewV7()
				if err != nil {
					cancel(err)
					return
				}
				tenant, readyAt, body := task(i)
				now := time.Now().UTC()
				t := &async.Task{
					ID: id.String(), Tenant: tenant, Function: "noop", Payload: body, ContentType: "application/json",
					CreatedAt: now, UpdatedAt: now, ReadyAt: readyAt,
				}
				if _, _, err := q.Enqueue(ctx, t, 0); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	err = context.Cause(ctx)
	if cerr := q.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return 0, fmt.Errorf("preload: %w", err)
	}
	return time.Since(start), nil
}

// cloneStore copies the Pebble directory src to dst: sstables, which Pebble
// never changes once written, as hard links; the rest (WAL, MANIFEST,
// OPTIONS) as copies, so that Ferry running on dst cannot touch src.
func cloneStore(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		if strings.HasSuffix(path, ".sst") && os.Link(path, to) == nil {
			return nil
		}
		return copyFile(path, to)
	})
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

// scale is workload 3, Ferry only: with 1k, 100k and 1M tasks already
// queued (ready in an hour, so they sit in the scheduler's index and the
// LSM), the time to start and the memory that takes, then a burst of
// 20,000 tasks ready now (dispatch rate, CPU per task, latency under the
// burst) and an open-loop probe at a fixed rate (latency). Backlog sizes
// are interleaved; every run starts from a fresh copy of the preloaded
// store.
func (b *bench) scale(ctx context.Context) error {
	bases := map[int]string{}
	defer func() {
		for _, d := range bases {
			removeSynced(d)
		}
	}()
	for _, n := range b.sz.backlogs {
		dir := filepath.Join(b.tmp, fmt.Sprintf("backlog-%d", n))
		bases[n] = dir
		b.cfg.Progress("scale: preloading %d tasks into the embedded store…", n)
		readyAt := time.Now().Add(time.Hour)
		body := payload(readyAt)
		took, err := preload(ctx, dir, n, func(int) (string, time.Time, []byte) { return "bench", readyAt, body })
		if err != nil {
			return err
		}
		b.cfg.Progress("  preloaded %d tasks in %s (%.0f/s)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	}
	for run := 1; run <= b.cfg.Runs; run++ {
		for _, n := range b.sz.backlogs {
			b.step(results.Scale, run, fmt.Sprintf("ferry (go backend), %d queued", n))
			if err := b.scaleRun(ctx, run, n, bases[n]); err != nil {
				return fmt.Errorf("backlog %d run %d: %w", n, run, err)
			}
		}
	}
	return nil
}

// scaleRun measures one Ferry on a copy of the store base holding backlog
// tasks.
func (b *bench) scaleRun(ctx context.Context, run, backlog int, base string) (err error) {
	dir, err := b.runDir()
	if err != nil {
		return err
	}
	defer removeSynced(dir)
	data := filepath.Join(dir, "data")
	if err := cloneStore(base, data); err != nil {
		return fmt.Errorf("copy the preloaded store: %w", err)
	}
	syscall.Sync() // the copy's writeback is not this run's to pay
	n := b.sz.scaleTasks
	probeN := int(b.sz.probeRate * b.sz.probe.Seconds())
	spec := ferrySpec{dir: dir, dataDir: data, workers: workers, maxQueued: backlog + n + probeN + 1000}
	if run == 1 && backlog == slices.Max(b.sz.backlogs) {
		// The largest backlog's first run is profiled (CPU): where a big
		// index costs.
		spec.profile, spec.cpuOnly = filepath.Join(b.cfg.Profiles, fmt.Sprintf("ferry-scale-%d", backlog)), true
	}
	f, err := startFerry(ctx, spec)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.stop()) }()
	m := map[string]float64{"startup_s": f.ready.Seconds()}
	if m["rss_mb"], err = memMB(f.pid(), "VmRSS"); err != nil {
		return err
	}
	if m["rss_hwm_load_mb"], err = memMB(f.pid(), "VmHWM"); err != nil {
		return err
	}
	cl := newFerryClient(f.addrs.API, "noop", ferryKey("bench"), latencyWorkers)
	defer cl.close()

	// The burst: dispatch rate and CPU per task.
	cpu := newCPUMeter(map[string]int{"ferry": f.pid(), "generator": os.Getpid()})
	start := time.Now()
	if _, err := closedLoop(ctx, n, b.sz.clients, cl.submit, 0); err != nil {
		return err
	}
	end, err := f.waitDone(ctx, f.starts, n, completionTimeout(n))
	if err != nil {
		return err
	}
	m["tasks_per_s"] = float64(n) / end.Sub(start).Seconds()
	cpu.perK(m, n)
	burst, err := f.starts.samples(ctx, 0)
	if err != nil {
		return err
	}
	m["burst_p99_ms"] = percentile(latenciesMS(burst), 0.99)

	// The probe: latency at a fixed rate well below capacity.
	_, sent, err := openLoop(ctx, b.sz.probeRate, b.sz.probe, latencyWorkers, cl.submit)
	if err != nil {
		return err
	}
	if err := waitStarts(ctx, f.starts, n+sent, completionTimeout(sent)); err != nil {
		return err
	}
	probe, err := f.starts.samples(ctx, len(burst))
	if err != nil {
		return err
	}
	lat := latenciesMS(probe)
	m["p50_ms"], m["p99_ms"] = percentile(lat, 0.5), percentile(lat, 0.99)
	if m["rss_hwm_mb"], err = memMB(f.pid(), "VmHWM"); err != nil {
		return err
	}
	b.cfg.Progress("  backlog %d: start %.2fs, rss %.0f MB, %.0f tasks/s, probe p99 %.2f ms", backlog, m["startup_s"], m["rss_mb"], m["tasks_per_s"], m["p99_ms"])
	params := map[string]string{
		"backlog": itoa(backlog), "tasks": itoa(n), "clients": itoa(b.sz.clients), "workers": itoa(workers),
		"probe_rate": fmt.Sprintf("%.0f", b.sz.probeRate), "probe": b.sz.probe.String(),
	}
	return b.record(results.Scale, sysFerryGo, run, params, m)
}
