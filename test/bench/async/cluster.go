package async

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/test/bench/results"
)

// clusterNodes are the cluster sizes measured: 1, 2 and 3 Ferry nodes on
// one Redis.
var clusterNodes = []int{1, 2, 3}

// clusterAsynq is the asynq the cluster workload compares with: its best
// tuned TaskCheckInterval (the default, 1 s, only changes the latency).
var clusterAsynq = asynqSystems[1]

// clusterSystem names Ferry with nodes nodes on the Redis store.
func clusterSystem(nodes int) string {
	return fmt.Sprintf("ferry ×%d (redis store)", nodes)
}

// clusterDB is the Redis database of the Ferry nodes; their keys live under
// a prefix of their own (clusterPrefix), deleted after every run.
const clusterDB = 0

// RunCluster runs the cluster workload: 1, 2 and 3 Ferry nodes sharing one
// Redis (store.redis) against asynq on the same Redis, with the same total
// concurrency, interleaved, appending one results.Result per system and
// run to cfg.Out.
func RunCluster(ctx context.Context, cfg Config) error {
	b, cleanup, err := newBench(cfg, false)
	if err != nil {
		return err
	}
	defer cleanup()
	return b.runWorkloads(ctx, []workload{{results.Cluster, b.cluster}})
}

// cluster is the multi-node workload. Each run takes, in turn, asynq and
// Ferry with 1, 2 and 3 nodes; every system first runs N tasks submitted
// by 32 concurrent clients while it dispatches them (the throughput
// workload's closed loop; Ferry's submissions go to the nodes round-robin),
// then, on the same processes, an open loop at half of its median peak rate
// so far (p50/p99 of submit → backend start). CPU per task counts the
// system's processes and Redis (from INFO cpu); Redis's INFO commandstats
// over the closed loop are kept beside the profiles for run 1, where node 1
// of the 1- and 3-node clusters is also CPU-profiled (the whole process
// life: closed loop and open loop).
func (b *bench) cluster(ctx context.Context) error {
	rdb := redis.NewClient(&redis.Options{Addr: b.cfg.RedisAddr, DB: clusterDB})
	defer rdb.Close()
	peaks := map[string][]float64{}
	for run := 1; run <= b.cfg.Runs; run++ {
		steps := []struct {
			system string
			nodes  int // 0: asynq
		}{{clusterAsynq.name, 0}}
		for _, n := range clusterNodes {
			steps = append(steps, struct {
				system string
				nodes  int
			}{clusterSystem(n), n})
		}
		for _, s := range steps {
			b.step(results.Cluster, run, s.system)
			var err error
			if s.nodes == 0 {
				err = b.clusterAsynqRun(ctx, rdb, run, peaks)
			} else {
				err = b.clusterFerryRun(ctx, rdb, run, s.nodes, peaks)
			}
			if err != nil {
				return fmt.Errorf("%s run %d: %w", s.system, run, err)
			}
		}
	}
	return nil
}

// clusterTarget is a running system under test of the cluster workload.
type clusterTarget struct {
	system   string
	pids     map[string]int // cpuMeter names → pids of the system's processes
	submit   submitFunc     // closed loop (32 clients)
	latency  submitFunc     // open loop (latencyWorkers connections)
	starts   starts
	waitDone func(ctx context.Context, n int) error
	params   map[string]string
}

// clusterFerryRun starts nodes Ferry nodes on one Redis prefix, measures
// them and removes their keys.
func (b *bench) clusterFerryRun(ctx context.Context, rdb *redis.Client, run, nodes int, peaks map[string][]float64) (err error) {
	dir, err := b.runDir()
	if err != nil {
		return err
	}
	defer removeSynced(dir)
	prefix := fmt.Sprintf("ferrybench-%d-r%d-n%d", os.Getpid(), run, nodes)
	defer func() { err = errors.Join(err, deletePrefix(context.WithoutCancel(ctx), rdb, prefix)) }()
	total := b.sz.clusterN + int(float64(b.sz.clusterN)*(b.sz.warmup+b.sz.clusterLat).Seconds()) + 1000
	var fs []*ferryd
	defer func() {
		for _, f := range fs {
			err = errors.Join(err, f.stop())
		}
	}()
	system := clusterSystem(nodes)
	t := clusterTarget{system: system, pids: map[string]int{}}
	var closed, open []*ferryClient
	var sts multiStarts
	for i := range nodes {
		nodeDir := filepath.Join(dir, fmt.Sprintf("node-%d", i+1))
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			return err
		}
		spec := ferrySpec{
			dir: nodeDir, workers: splitWorkers(workers, nodes, i), limit: workers, maxQueued: total,
			redisURL: fmt.Sprintf("redis://%s/%d", b.cfg.RedisAddr, clusterDB), redisPrefix: prefix,
		}
		if run == 1 && i == 0 && nodes != 2 {
			spec.profile = filepath.Join(b.cfg.Profiles, fmt.Sprintf("ferry-cluster-x%d-node1", nodes))
			spec.cpuOnly = true
		}
		f, err := startFerry(ctx, spec)
		if err != nil {
			return fmt.Errorf("node %d: %w", i+1, err)
		}
		fs = append(fs, f)
		t.pids[fmt.Sprintf("ferry-%d", i+1)] = f.pid()
		cl := newFerryClient(f.addrs.API, "noop", ferryKey("bench"), b.sz.clients)
		defer cl.close()
		lcl := newFerryClient(f.addrs.API, "noop", ferryKey("bench"), latencyWorkers)
		defer lcl.close()
		closed, open = append(closed, cl), append(open, lcl)
		sts = append(sts, f.starts)
	}
	t.submit, t.latency, t.starts = roundRobin(closed), roundRobin(open), sts
	t.waitDone = func(ctx context.Context, n int) error {
		if err := waitStarts(ctx, sts, n, completionTimeout(n)); err != nil {
			return fmt.Errorf("ferry: %w", err)
		}
		return waitFor(ctx, time.Minute, 5*time.Millisecond, func() (bool, string, error) {
			var c int64
			for _, f := range fs {
				x, err := f.succeeded(ctx)
				if err != nil {
					return false, "", err
				}
				c += x
			}
			return c >= int64(n), fmt.Sprintf("%d of %d tasks succeeded", c, n), nil
		})
	}
	t.params = map[string]string{
		"nodes": itoa(nodes), "workers_total": itoa(workers), "store": "redis",
		"workers_per_node": nodeWorkers(workers, nodes),
	}
	return b.clusterMeasure(ctx, rdb, run, t, peaks)
}

// clusterAsynqRun measures a fresh asynq worker (its database flushed).
func (b *bench) clusterAsynqRun(ctx context.Context, rdb *redis.Client, run int, peaks map[string][]float64) (err error) {
	a, err := startAsynq(ctx, b.cfg.RedisAddr, clusterAsynq)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, a.stop()) }()
	cl := newAsynqClient(b.cfg.RedisAddr, b.sz.clients)
	defer cl.close()
	lcl := newAsynqClient(b.cfg.RedisAddr, latencyWorkers)
	defer lcl.close()
	t := clusterTarget{
		system: clusterAsynq.name, pids: map[string]int{"asynq": a.pid()},
		submit: cl.submit, latency: lcl.submit, starts: a.starts,
		waitDone: func(ctx context.Context, n int) error {
			_, err := a.waitDone(ctx, n, completionTimeout(n))
			return err
		},
		params: clusterAsynq.params(),
	}
	t.params["nodes"] = "1"
	t.params["workers_total"] = itoa(asynqConcurrency)
	defer func() { err = errors.Join(err, flushAsynqDB(context.WithoutCancel(ctx), b.cfg.RedisAddr)) }()
	return b.clusterMeasure(ctx, rdb, run, t, peaks)
}

// clusterMeasure runs the closed loop and then the open loop on t and
// records one result.
func (b *bench) clusterMeasure(ctx context.Context, rdb *redis.Client, run int, t clusterTarget, peaks map[string][]float64) error {
	n := b.sz.clusterN
	redisCPU0, err := redisCPU(ctx, rdb)
	if err != nil {
		return err
	}
	stats0, err := commandStats(ctx, rdb)
	if err != nil {
		return err
	}
	pids := maps2(t.pids, map[string]int{"generator": os.Getpid()})
	busy0, ticks0, err := machineTimes()
	if err != nil {
		return err
	}
	var run0, wait0 time.Duration
	if b.redisPID != 0 {
		if run0, wait0, err = schedTimes(b.redisPID, b.redisPID); err != nil {
			return err
		}
	}
	cpu := newCPUMeter(pids)
	start := time.Now()
	took, err := closedLoop(ctx, n, b.sz.clients, t.submit, 0)
	if err != nil {
		return err
	}
	if err := t.waitDone(ctx, n); err != nil {
		return err
	}
	end := time.Now()
	busy1, ticks1, err := machineTimes()
	if err != nil {
		return err
	}
	var run1, wait1 time.Duration
	if b.redisPID != 0 {
		if run1, wait1, err = schedTimes(b.redisPID, b.redisPID); err != nil {
			return err
		}
	}
	redisCPU1, err := redisCPU(ctx, rdb)
	if err != nil {
		return err
	}
	stats1, err := commandStats(ctx, rdb)
	if err != nil {
		return err
	}
	raw := map[string]float64{}
	cpu.perK(raw, n)
	m := map[string]float64{
		"tasks_per_s":         float64(n) / end.Sub(start).Seconds(),
		"submit_per_s":        float64(n) / took.Seconds(),
		"cpu_ms_per_1k_redis": (redisCPU1 - redisCPU0).Seconds() * 1000 * 1000 / float64(n),
	}
	// The system's processes summed under one name (ferry or asynq); the
	// generator's CPU is kept apart from the total: it submits over HTTP
	// to Ferry and with asynq's client library to Redis.
	for name, v := range raw {
		sysName, _ := strings.CutPrefix(name, "cpu_ms_per_1k_")
		switch {
		case sysName == "generator":
			m["generator_cpu_ms_per_1k"] = v
		case strings.HasPrefix(sysName, "ferry"):
			m["cpu_ms_per_1k_ferry"] += v
			m["cpu_ms_per_1k_ferry_node_max"] = max(m["cpu_ms_per_1k_ferry_node_max"], v)
		default:
			m[name] = v
		}
	}
	nodeMax := m["cpu_ms_per_1k_ferry_node_max"]
	delete(m, "cpu_ms_per_1k_ferry_node_max")
	// Where the 2 cores went over the closed loop, in cores: the machine
	// (every process, the other engineers' too), the system, Redis, the
	// generator; and Redis's main thread, which runs every command and
	// script, as a share of the wall time running and waiting for a CPU.
	wall := end.Sub(start).Seconds()
	cores := func(msPer1k float64) float64 { return msPer1k * float64(n) / 1e6 / wall }
	ncpu := float64(runtime.NumCPU())
	m["machine_busy_cores"] = float64(busy1-busy0) / float64(ticks1-ticks0) * ncpu
	m["system_cores"] = cores(m["cpu_ms_per_1k_ferry"] + m["cpu_ms_per_1k_asynq"])
	m["system_node_max_cores"] = cores(nodeMax)
	if strings.HasPrefix(t.system, "asynq") {
		m["system_node_max_cores"] = m["system_cores"]
	}
	m["redis_cores"] = cores(m["cpu_ms_per_1k_redis"])
	m["generator_cores"] = cores(m["generator_cpu_ms_per_1k"])
	m["other_cores"] = m["machine_busy_cores"] - m["system_cores"] - m["redis_cores"] - m["generator_cores"]
	if b.redisPID != 0 {
		m["redis_main_run_pct"] = 100 * (run1 - run0).Seconds() / wall
		m["redis_main_wait_pct"] = 100 * (wait1 - wait0).Seconds() / wall
	}
	diff := diffStats(stats0, stats1)
	if s, ok := diff["evalsha"]; ok {
		m["redis_evalsha_per_task"] = s.calls / float64(n)
		m["redis_evalsha_us_per_task"] = s.usec / float64(n)
	}
	if run == 1 {
		name := "cluster-redis-commandstats-asynq"
		if strings.HasPrefix(t.system, "ferry") {
			name = "cluster-redis-commandstats-ferry-x" + t.params["nodes"]
		}
		path := filepath.Join(b.cfg.Profiles, name+".top.txt")
		if err := os.WriteFile(path, []byte(formatStats(t.system, n, diff)), 0o644); err != nil {
			return err
		}
	}
	peaks[t.system] = append(peaks[t.system], m["tasks_per_s"])
	b.cfg.Progress("  %s: %.0f tasks/s (submit %.0f/s), CPU ms/1k: system %.1f, redis %.1f, generator %.1f; %.2f EVALSHA/task",
		t.system, m["tasks_per_s"], m["submit_per_s"], m["cpu_ms_per_1k_ferry"]+m["cpu_ms_per_1k_asynq"],
		m["cpu_ms_per_1k_redis"], m["generator_cpu_ms_per_1k"], m["redis_evalsha_per_task"])
	b.cfg.Progress("    cores: machine %.2f, system %.2f (busiest node %.2f), redis %.2f (main thread ran %.0f%%, waited for a CPU %.0f%%), generator %.2f, others %.2f",
		m["machine_busy_cores"], m["system_cores"], m["system_node_max_cores"], m["redis_cores"], m["redis_main_run_pct"],
		m["redis_main_wait_pct"], m["generator_cores"], m["other_cores"])

	// Latency at half of the median peak so far, on the same processes.
	rate := median(peaks[t.system]) / 2
	lat, err := b.openLoopLatency(ctx, rate, b.sz.warmup, b.sz.clusterLat, n, t.starts, t.latency)
	if err != nil {
		return fmt.Errorf("latency at %.0f tasks/s: %w", rate, err)
	}
	for _, k := range []string{"rate_per_s", "p50_ms", "p99_ms", "p999_ms"} {
		m[k] = lat[k]
	}
	b.cfg.Progress("  %s at %.0f tasks/s: p50 %.2f ms, p99 %.2f ms", t.system, rate, m["p50_ms"], m["p99_ms"])
	params := maps2(t.params, map[string]string{
		"tasks": itoa(n), "clients": itoa(b.sz.clients), "latency": b.sz.clusterLat.String(), "warmup": b.sz.warmup.String(),
	})
	return b.record(results.Cluster, t.system, run, params, m)
}

// maps2 returns a new map with a's entries and b's.
func maps2[V any](a, b map[string]V) map[string]V {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

// splitWorkers is node i's share of total workers over nodes nodes.
func splitWorkers(total, nodes, i int) int {
	w := total / nodes
	if i < total%nodes {
		w++
	}
	return w
}

// nodeWorkers lists every node's share: "22/21/21".
func nodeWorkers(total, nodes int) string {
	out := make([]string, nodes)
	for i := range out {
		out[i] = itoa(splitWorkers(total, nodes, i))
	}
	return strings.Join(out, "/")
}

// roundRobin submits through the clients in turn.
func roundRobin(cls []*ferryClient) submitFunc {
	var next atomic.Uint64
	return func(ctx context.Context, t time.Time, delay time.Duration) error {
		return cls[(next.Add(1)-1)%uint64(len(cls))].submit(ctx, t, delay)
	}
}

// multiStarts is the backend starts of several nodes.
type multiStarts []starts

func (m multiStarts) count(ctx context.Context) (int64, error) {
	var n int64
	for _, s := range m {
		c, err := s.count(ctx)
		if err != nil {
			return 0, err
		}
		n += c
	}
	return n, nil
}

// samples returns every node's samples; from must be 0 (a position means
// nothing across nodes).
func (m multiStarts) samples(ctx context.Context, from int) ([]sample, error) {
	if from != 0 {
		return nil, errors.New("multiStarts: samples from a position")
	}
	var out []sample
	for _, s := range m {
		x, err := s.samples(ctx, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, x...)
	}
	return out, nil
}

// deletePrefix removes every key of a redisstore prefix ({P}... and
// {P:t:T}...).
func deletePrefix(ctx context.Context, rdb *redis.Client, prefix string) error {
	var cursor uint64
	for {
		keys, next, err := rdb.Scan(ctx, cursor, "{"+prefix+"[:}]*", 1000).Result()
		if err != nil {
			return fmt.Errorf("delete keys of prefix %s: %w", prefix, err)
		}
		if len(keys) > 0 {
			if err := rdb.Unlink(ctx, keys...).Err(); err != nil {
				return fmt.Errorf("delete keys of prefix %s: %w", prefix, err)
			}
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// redisCPU is Redis's used_cpu_sys + used_cpu_user (INFO cpu).
func redisCPU(ctx context.Context, rdb *redis.Client) (time.Duration, error) {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, fmt.Errorf("INFO cpu: %w", err)
	}
	var total float64
	found := 0
	for line := range strings.SplitSeq(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_sys" && k != "used_cpu_user") {
			continue
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO cpu: %s: %w", line, err)
		}
		total += x
		found++
	}
	if found != 2 {
		return 0, errors.New("INFO cpu: no used_cpu_sys and used_cpu_user")
	}
	return time.Duration(total * float64(time.Second)), nil
}

// cmdStat is one command's calls and microseconds (INFO commandstats).
type cmdStat struct{ calls, usec float64 }

// commandStats reads INFO commandstats: command → its counters.
func commandStats(ctx context.Context, rdb *redis.Client) (map[string]cmdStat, error) {
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, fmt.Errorf("INFO commandstats: %w", err)
	}
	out := map[string]cmdStat{}
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		name, isCmd := strings.CutPrefix(name, "cmdstat_")
		if !ok || !isCmd {
			continue
		}
		var s cmdStat
		for kv := range strings.SplitSeq(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			x, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "calls":
				s.calls = x
			case "usec":
				s.usec = x
			}
		}
		out[name] = s
	}
	return out, nil
}

// diffStats is after − before, for the commands that were called.
func diffStats(before, after map[string]cmdStat) map[string]cmdStat {
	out := map[string]cmdStat{}
	for name, a := range after {
		d := cmdStat{calls: a.calls - before[name].calls, usec: a.usec - before[name].usec}
		if d.calls > 0 {
			out[name] = d
		}
	}
	return out
}

// formatStats renders a commandstats delta, most time first.
func formatStats(system string, n int, d map[string]cmdStat) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Redis INFO commandstats, delta over the closed loop of %s (%d tasks; the whole Redis, so\n", system, n)
	fmt.Fprintf(&b, "other clients' commands would count too). Commands that scripts call are counted on their\n")
	fmt.Fprintf(&b, "own lines as well as inside the script's (evalsha) time.\n\n")
	names := make([]string, 0, len(d))
	for k := range d {
		names = append(names, k)
	}
	slices.SortFunc(names, func(x, y string) int {
		if d[x].usec != d[y].usec {
			if d[x].usec > d[y].usec {
				return -1
			}
			return 1
		}
		return strings.Compare(x, y)
	})
	fmt.Fprintf(&b, "%-24s %12s %10s %12s %10s %10s\n", "command", "calls", "calls/task", "usec", "usec/task", "usec/call")
	for _, k := range names {
		s := d[k]
		fmt.Fprintf(&b, "%-24s %12.0f %10.2f %12.0f %10.2f %10.2f\n", k, s.calls, s.calls/float64(n), s.usec, s.usec/float64(n), s.usec/s.calls)
	}
	return b.String()
}
