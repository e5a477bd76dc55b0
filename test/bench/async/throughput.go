package async

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/ferrydev/ferry/test/bench/results"
)

// System names of the throughput workload (and of latency, for the same
// systems).
const (
	sysFerryGo     = "ferry (go backend)"
	sysFerryHTTP   = "ferry (http backend)"
	sysFerrySubmit = "ferry submit API alone"
	// The batch systems submit batchSize tasks per request
	// (POST /v1/functions/{fn}/tasks/batch).
	sysFerryGoBatch     = "ferry (go backend, batch submit)"
	sysFerryBatchSubmit = "ferry batch submit alone"
	sysAsynqSubmit      = "asynq enqueue alone"
	sysWrk              = "wrk → trivial Go server"
)

// throughput is workload 1: N tasks submitted by 32 concurrent clients
// until all have succeeded, for Ferry with its Go and its HTTP backend and
// asynq at two TaskCheckIntervals, interleaved, with the ceilings in every
// round: Ferry's submit API alone, asynq's enqueue alone, and wrk against a
// trivial Go server.
func (b *bench) throughput(ctx context.Context) error {
	for run := 1; run <= b.cfg.Runs; run++ {
		steps := []struct {
			name string
			do   func() error
		}{
			{sysFerryGo, func() error { return b.ferryThroughput(ctx, run, false, false) }},
			{asynqSystems[0].name, func() error { return b.asynqThroughput(ctx, run, asynqSystems[0]) }},
			{sysFerryHTTP, func() error { return b.ferryThroughput(ctx, run, true, false) }},
			{asynqSystems[1].name, func() error { return b.asynqThroughput(ctx, run, asynqSystems[1]) }},
			{sysFerryGoBatch, func() error { return b.ferryThroughput(ctx, run, false, true) }},
			{sysFerrySubmit, func() error { return b.ferrySubmitOnly(ctx, run, false) }},
			{sysFerryBatchSubmit, func() error { return b.ferrySubmitOnly(ctx, run, true) }},
			{sysAsynqSubmit, func() error { return b.asynqEnqueueOnly(ctx, run) }},
			{sysWrk, func() error { return b.wrk(ctx, run) }},
		}
		for _, s := range steps {
			b.step(results.Throughput, run, s.name)
			if err := s.do(); err != nil {
				return fmt.Errorf("%s run %d: %w", s.name, run, err)
			}
		}
	}
	return nil
}

// loadParams are the Params every closed-loop run shares.
func (b *bench) loadParams(n int) map[string]string {
	return map[string]string{"tasks": itoa(n), "clients": itoa(b.sz.clients), "workers": itoa(workers)}
}

// ferryThroughput runs N tasks through a fresh Ferry, with the Go backend
// or the HTTP one (a no-op function server in this process), submitted one
// per request or in batches. Run 1 is profiled (CPU and allocations).
func (b *bench) ferryThroughput(ctx context.Context, run int, httpBackend, batch bool) (err error) {
	dir, err := b.runDir()
	if err != nil {
		return err
	}
	defer removeSynced(dir)
	n := b.sz.n
	spec := ferrySpec{dir: dir, workers: workers, maxQueued: n + 1000}
	system, profile := sysFerryGo, "ferry-throughput-go"
	var fn *functionServer
	if httpBackend {
		system, profile = sysFerryHTTP, "ferry-throughput-http"
		if fn, err = startFunctionServer(); err != nil {
			return err
		}
		defer fn.close()
		spec.httpURL = fn.url
	}
	if batch {
		system, profile = sysFerryGoBatch, "ferry-throughput-go-batch"
	}
	params := b.loadParams(n)
	if run == 1 {
		// Run 1 is profiled (CPU and allocations); it is not told apart in
		// the results, so that its figures count in the median.
		spec.profile = filepath.Join(b.cfg.Profiles, profile)
	}
	f, err := startFerry(ctx, spec)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.stop()) }()
	var st starts = f.starts
	if fn != nil {
		st = fn.rec
	}
	cl := newFerryClient(f.addrs.API, "noop", ferryKey("bench"), b.sz.clients)
	defer cl.close()

	submit, calls := cl.submit, n
	if batch {
		submit, calls = cl.batchSubmit(), n/batchSize
		params["batch"] = itoa(batchSize)
	}
	cpu := newCPUMeter(map[string]int{"ferry": f.pid(), "generator": os.Getpid()})
	start := time.Now()
	took, err := closedLoop(ctx, calls, b.sz.clients, submit, 0)
	if err != nil {
		return err
	}
	end, err := f.waitDone(ctx, st, n, completionTimeout(n))
	if err != nil {
		return err
	}
	m := map[string]float64{
		"tasks_per_s":  float64(n) / end.Sub(start).Seconds(),
		"submit_per_s": float64(n) / took.Seconds(),
	}
	cpu.perK(m, n)
	if m["rss_mb"], err = memMB(f.pid(), "VmHWM"); err != nil {
		return err
	}
	b.peak[system] = append(b.peak[system], m["tasks_per_s"])
	b.cfg.Progress("  %s: %.0f tasks/s, submit %.0f/s", system, m["tasks_per_s"], m["submit_per_s"])
	return b.record(results.Throughput, system, run, params, m)
}

// asynqThroughput enqueues N tasks from 32 goroutines with asynq.Client
// while a fresh asynq worker (its own process) runs them.
func (b *bench) asynqThroughput(ctx context.Context, run int, s asynqSpec) (err error) {
	n := b.sz.n
	a, err := startAsynq(ctx, b.cfg.RedisAddr, s)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, a.stop()) }()
	cl := newAsynqClient(b.cfg.RedisAddr, b.sz.clients)
	defer cl.close()

	cpu := newCPUMeter(map[string]int{"asynq": a.pid(), "redis": b.redisPID, "generator": os.Getpid()})
	start := time.Now()
	took, err := closedLoop(ctx, n, b.sz.clients, cl.submit, 0)
	if err != nil {
		return err
	}
	end, err := a.waitDone(ctx, n, completionTimeout(n))
	if err != nil {
		return err
	}
	m := map[string]float64{
		"tasks_per_s":  float64(n) / end.Sub(start).Seconds(),
		"submit_per_s": float64(n) / took.Seconds(),
	}
	cpu.perK(m, n)
	if m["rss_mb"], err = memMB(a.pid(), "VmHWM"); err != nil {
		return err
	}
	b.peak[s.name] = append(b.peak[s.name], m["tasks_per_s"])
	b.cfg.Progress("  %s: %.0f tasks/s, enqueue %.0f/s", s.name, m["tasks_per_s"], m["submit_per_s"])
	params := b.loadParams(n)
	for k, v := range s.params() {
		params[k] = v
	}
	return b.record(results.Throughput, s.name, run, params, m)
}

// ferrySubmitOnly is the submit API's ceiling: N tasks submitted with
// Ferry-Delay: 1h, so nothing dispatches, one per request or in batches.
func (b *bench) ferrySubmitOnly(ctx context.Context, run int, batch bool) (err error) {
	dir, err := b.runDir()
	if err != nil {
		return err
	}
	defer removeSynced(dir)
	n := b.sz.n
	f, err := startFerry(ctx, ferrySpec{dir: dir, workers: workers, maxQueued: n + 1000})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.stop()) }()
	cl := newFerryClient(f.addrs.API, "noop", ferryKey("bench"), b.sz.clients)
	defer cl.close()
	system, submit, calls := sysFerrySubmit, cl.submit, n
	params := b.loadParams(n)
	params["delay"] = "1h"
	if batch {
		system, submit, calls = sysFerryBatchSubmit, cl.batchSubmit(), n/batchSize
		params["batch"] = itoa(batchSize)
	}
	cpu := newCPUMeter(map[string]int{"ferry": f.pid(), "generator": os.Getpid()})
	took, err := closedLoop(ctx, calls, b.sz.clients, submit, time.Hour)
	if err != nil {
		return err
	}
	m := map[string]float64{"submit_per_s": float64(n) / took.Seconds()}
	cpu.perK(m, n)
	if m["rss_mb"], err = memMB(f.pid(), "VmHWM"); err != nil {
		return err
	}
	b.cfg.Progress("  %s: %.0f/s", system, m["submit_per_s"])
	return b.record(results.Throughput, system, run, params, m)
}

// asynqEnqueueOnly is asynq's enqueue ceiling: N plain Enqueues (the same
// write as in asynqThroughput) with no worker running, so nothing is
// dequeued meanwhile.
func (b *bench) asynqEnqueueOnly(ctx context.Context, run int) error {
	n := b.sz.n
	if err := flushAsynqDB(ctx, b.cfg.RedisAddr); err != nil {
		return err
	}
	cl := newAsynqClient(b.cfg.RedisAddr, b.sz.clients)
	defer cl.close()
	cpu := newCPUMeter(map[string]int{"redis": b.redisPID, "generator": os.Getpid()})
	took, err := closedLoop(ctx, n, b.sz.clients, cl.submit, 0)
	if err != nil {
		return err
	}
	m := map[string]float64{"submit_per_s": float64(n) / took.Seconds()}
	cpu.perK(m, n)
	if err := flushAsynqDB(ctx, b.cfg.RedisAddr); err != nil {
		return err
	}
	b.cfg.Progress("  %s: %.0f/s", sysAsynqSubmit, m["submit_per_s"])
	params := b.loadParams(n)
	params["worker"] = "none"
	return b.record(results.Throughput, sysAsynqSubmit, run, params, m)
}

// wrkScript makes wrk POST a small JSON body.
const wrkScript = `wrk.method = "POST"
wrk.body = '{"t":1700000000000000000}'
wrk.headers["Content-Type"] = "application/json"
`

var wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// wrk is the HTTP ceiling: `wrk -t2 -c64` POSTing a small body to a
// trivial Go server (in this process, idle otherwise) that reads it and
// answers 200.
func (b *bench) wrk(ctx context.Context, run int) error {
	dir, err := b.runDir()
	if err != nil {
		return err
	}
	defer removeSynced(dir)
	script := filepath.Join(dir, "post.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o644); err != nil {
		return err
	}
	addr, closeSrv, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	if err != nil {
		return err
	}
	defer closeSrv()
	d := strconv.Itoa(int(b.sz.wrk.Seconds())) + "s"
	out, err := exec.CommandContext(ctx, "wrk", "-t2", "-c64", "-d"+d, "-s", script, "http://"+addr+"/").CombinedOutput()
	if err != nil {
		return fmt.Errorf("wrk: %w\n%s", err, out)
	}
	match := wrkRate.FindSubmatch(out)
	if match == nil {
		return fmt.Errorf("wrk: no Requests/sec in its output:\n%s", out)
	}
	rate, err := strconv.ParseFloat(string(match[1]), 64)
	if err != nil {
		return fmt.Errorf("wrk: %w", err)
	}
	b.cfg.Progress("  %s: %.0f req/s", sysWrk, rate)
	return b.record(results.Throughput, sysWrk, run,
		map[string]string{"threads": "2", "connections": "64", "duration": d}, map[string]float64{"req_per_s": rate})
}
