package async

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/test/bench/results"
)

// fairness is workload 4, Ferry only (asynq has no tenants): 1,000
// tenants, each with its own API key and function; tenant 0 has half of
// the tasks, the 999 others share the other half. All tasks are preloaded
// (in random order) to become ready at one instant, then Ferry runs them.
// Over the window from that instant until the first tenant has started all
// of its tasks, each tenant's throughput is its tasks started in the
// window; Jain's index (Σx)²/(n·Σx²) over them is 1 when every tenant got
// the same share. Latencies count from the common ready instant.
func (b *bench) fairness(ctx context.Context) error {
	for run := 1; run <= b.cfg.Runs; run++ {
		b.step(results.Fairness, run, fmt.Sprintf("ferry (go backend), %d tenants, %d tasks", b.sz.tenants, b.sz.fairTasks))
		if err := b.fairnessRun(ctx, run); err != nil {
			return fmt.Errorf("run %d: %w", run, err)
		}
	}
	return nil
}

// fairShares returns each tenant's number of tasks: half of total for
// tenant 0, the rest spread evenly over the others.
func fairShares(tenants, total int) []int {
	shares := make([]int, tenants)
	shares[0] = total / 2
	rest := total - shares[0]
	for i := 1; i < tenants; i++ {
		shares[i] = rest / (tenants - 1)
	}
	for i := 1; i <= rest%(tenants-1); i++ {
		shares[i]++
	}
	return shares
}

func (b *bench) fairnessRun(ctx context.Context, run int) (err error) {
	dir, err := b.runDir()
	if err != nil {
		return err
	}
	defer removeSynced(dir)
	names := make([]string, b.sz.tenants)
	index := map[string]int{}
	for i := range names {
		names[i] = fmt.Sprintf("t%04d", i)
		index[names[i]] = i
	}
	shares := fairShares(b.sz.tenants, b.sz.fairTasks)
	owner := make([]int, 0, b.sz.fairTasks) // task → tenant, shuffled
	for i, s := range shares {
		for range s {
			owner = append(owner, i)
		}
	}
	rand.Shuffle(len(owner), func(i, j int) { owner[i], owner[j] = owner[j], owner[i] })

	// The common ready instant leaves time to preload and start Ferry.
	margin := 3*time.Second + time.Duration(b.sz.fairTasks)*200*time.Microsecond
	readyAt := time.Now().Add(margin)
	body := payload(readyAt)
	data := filepath.Join(dir, "data")
	if _, err := preload(ctx, data, len(owner), func(i int) (string, time.Time, []byte) {
		return names[owner[i]], readyAt, body
	}); err != nil {
		return err
	}
	syscall.Sync()
	f, err := startFerry(ctx, ferrySpec{dir: dir, dataDir: data, tenants: names, workers: workers, maxQueued: b.sz.fairTasks})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.stop()) }()
	if late := time.Since(readyAt); late > 0 {
		return fmt.Errorf("ferry was ready %s after the tasks' common ready instant (margin %s too short)", late.Round(time.Millisecond), margin)
	}
	if err := waitStarts(ctx, f.starts, len(owner), completionTimeout(len(owner))+margin); err != nil {
		return err
	}
	all, err := f.starts.samples(ctx, 0)
	if err != nil {
		return err
	}
	m, err := fairnessMetrics(all, index, shares, readyAt.UnixNano())
	if err != nil {
		return err
	}
	b.cfg.Progress("  jain %.3f, small tenants p99 %.1f ms, big tenant p99 %.1f ms", m["jain"], m["small_p99_ms"], m["big_p99_ms"])
	params := map[string]string{
		"tenants": itoa(b.sz.tenants), "tasks": itoa(b.sz.fairTasks), "big_tasks": itoa(shares[0]), "workers": itoa(workers),
	}
	return b.record(results.Fairness, sysFerryGo, run, params, m)
}

// fairnessMetrics computes Jain's index over the window until the first
// tenant finished, and the latencies from the ready instant t0 (which
// every task's payload carries).
func fairnessMetrics(all []sample, index map[string]int, shares []int, t0 int64) (map[string]float64, error) {
	n := len(shares)
	seen := make([]int, n)
	first, last := make([]int64, n), make([]int64, n)
	var small, big []sample
	var lastStart int64
	for _, s := range all {
		i, ok := index[s.K]
		if !ok {
			return nil, fmt.Errorf("a task of unknown tenant %q started", s.K)
		}
		seen[i]++
		if first[i] == 0 || s.S < first[i] {
			first[i] = s.S
		}
		last[i] = max(last[i], s.S)
		lastStart = max(lastStart, s.S)
		if i == 0 {
			big = append(big, s)
		} else {
			small = append(small, s)
		}
	}
	end := int64(0)
	for i := range n {
		if seen[i] < shares[i] {
			return nil, fmt.Errorf("tenant %d started %d of its %d tasks", i, seen[i], shares[i])
		}
		if end == 0 || last[i] < end {
			end = last[i]
		}
	}
	inWindow := make([]float64, n)
	for _, s := range all {
		if s.S <= end {
			inWindow[index[s.K]]++
		}
	}
	var sum, sumSq float64
	for _, x := range inWindow {
		sum += x
		sumSq += x * x
	}
	smallFirst := make([]sample, 0, n-1) // each small tenant's first task
	for i := 1; i < n; i++ {
		smallFirst = append(smallFirst, sample{T: t0, S: first[i]})
	}
	smallLat, bigLat := latenciesMS(small), latenciesMS(big)
	return map[string]float64{
		"jain":         sum * sum / (float64(n) * sumSq),
		"window_ms":    float64(end-t0) / 1e6,
		"tasks_per_s":  float64(len(all)) / (float64(lastStart-t0) / 1e9),
		"small_p50_ms": percentile(smallLat, 0.5),
		"small_p99_ms": percentile(smallLat, 0.99),
		// How long a small tenant waits for its first task: one round
		// over the tenants with work, when the scheduler is fair.
		"small_first_p99_ms": percentile(latenciesMS(smallFirst), 0.99),
		"big_p50_ms":         percentile(bigLat, 0.5),
		"big_p99_ms":         percentile(bigLat, 0.99),
	}, nil
}
