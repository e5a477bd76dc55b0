package async

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/ferrydev/ferry/test/bench/results"
)

// latencyWorkers bounds the open loop's submissions in flight.
const latencyWorkers = 128

// latency is workload 2: an open loop at half of each system's peak rate
// (the median tasks_per_s of its throughput runs) for Ferry with the Go
// backend and asynq at both TaskCheckIntervals, interleaved; p50, p99 and
// p99.9 of due → backend start, after a warm-up.
func (b *bench) latency(ctx context.Context) error {
	for run := 1; run <= b.cfg.Runs; run++ {
		for _, system := range []string{sysFerryGo, asynqSystems[0].name, asynqSystems[1].name} {
			peak := median(b.peak[system])
			if peak <= 0 {
				return fmt.Errorf("%s: no peak rate from the throughput workload", system)
			}
			rate := peak / 2
			b.step(results.Latency, run, fmt.Sprintf("%s at %.0f tasks/s", system, rate))
			var m map[string]float64
			var params map[string]string
			var err error
			if system == sysFerryGo {
				m, params, err = b.ferryLatency(ctx, rate)
			} else {
				s := asynqSystems[0]
				if system == asynqSystems[1].name {
					s = asynqSystems[1]
				}
				m, params, err = b.asynqLatency(ctx, s, rate)
			}
			if err != nil {
				return fmt.Errorf("%s run %d: %w", system, run, err)
			}
			params["peak_per_s"] = strconv.FormatFloat(peak, 'f', 0, 64)
			params["duration"] = b.sz.latency.String()
			params["warmup"] = b.sz.warmup.String()
			b.cfg.Progress("  %s: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms", system, m["p50_ms"], m["p99_ms"], m["p999_ms"])
			if err := b.record(results.Latency, system, run, params, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// ferryLatency measures a fresh Ferry (Go backend) under an open loop.
func (b *bench) ferryLatency(ctx context.Context, rate float64) (m map[string]float64, params map[string]string, err error) {
	dir, err := b.runDir()
	if err != nil {
		return nil, nil, err
	}
	defer removeSynced(dir)
	total := int(rate*(b.sz.latency+b.sz.warmup).Seconds()) + 1000
	f, err := startFerry(ctx, ferrySpec{dir: dir, workers: workers, maxQueued: total})
	if err != nil {
		return nil, nil, err
	}
	defer func() { err = errors.Join(err, f.stop()) }()
	cl := newFerryClient(f.addrs.API, "noop", ferryKey("bench"), latencyWorkers)
	defer cl.close()
	m, err = b.openLoopLatency(ctx, rate, b.sz.warmup, b.sz.latency, 0, f.starts, cl.submit)
	return m, map[string]string{"workers": itoa(workers), "connections": itoa(latencyWorkers)}, err
}

// asynqLatency measures a fresh asynq worker under an open loop.
func (b *bench) asynqLatency(ctx context.Context, s asynqSpec, rate float64) (m map[string]float64, params map[string]string, err error) {
	a, err := startAsynq(ctx, b.cfg.RedisAddr, s)
	if err != nil {
		return nil, nil, err
	}
	defer func() { err = errors.Join(err, a.stop()) }()
	cl := newAsynqClient(b.cfg.RedisAddr, latencyWorkers)
	defer cl.close()
	m, err = b.openLoopLatency(ctx, rate, b.sz.warmup, b.sz.latency, 0, a.starts, cl.submit)
	params = s.params()
	params["connections"] = itoa(latencyWorkers)
	return m, params, err
}

// openLoopLatency offers rate tasks/s for warmup + dur, waits until every
// task started (st had seen base starts before), and returns the
// percentiles of the measured part.
func (b *bench) openLoopLatency(ctx context.Context, rate float64, warmup, dur time.Duration, base int, st starts, submit submitFunc) (map[string]float64, error) {
	first, sent, err := openLoop(ctx, rate, warmup+dur, latencyWorkers, submit)
	if err != nil {
		return nil, err
	}
	if err := waitStarts(ctx, st, base+sent, completionTimeout(sent)); err != nil {
		return nil, err
	}
	all, err := st.samples(ctx, 0)
	if err != nil {
		return nil, err
	}
	from := first.Add(warmup).UnixNano()
	measured := make([]sample, 0, len(all))
	for _, s := range all {
		if s.T >= from {
			measured = append(measured, s)
		}
	}
	lat := latenciesMS(measured)
	return map[string]float64{
		"rate_per_s": rate,
		"tasks":      float64(len(lat)),
		"p50_ms":     percentile(lat, 0.50),
		"p99_ms":     percentile(lat, 0.99),
		"p999_ms":    percentile(lat, 0.999),
		"max_ms":     percentile(lat, 1),
	}, nil
}
