package report

import (
	"bytes"
	"image/png"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/bench/results"
)

// synthetic returns a full, interleaved results set with a little noise,
// shaped like a real `make bench` run.
func synthetic() []results.Result {
	rng := rand.New(rand.NewPCG(1, 2))
	noise := func(v float64) float64 { return v * (0.95 + 0.1*rng.Float64()) }
	var rs []results.Result
	add := func(w, sys string, run int, params map[string]string, ms map[string]float64) {
		for _, k := range slices.Sorted(maps.Keys(ms)) {
			ms[k] = noise(ms[k])
		}
		rs = append(rs, results.Result{Workload: w, System: sys, Run: run, Params: params, Metrics: ms})
	}
	for run := 1; run <= 3; run++ {
		add("throughput", "ferry (go backend)", run, nil, map[string]float64{"tasks_per_s": 9000, "submit_per_s": 42000, "cpu_ms_per_1k_ferry": 120, "rss_mb": 180})
		add("throughput", "asynq (default)", run, nil, map[string]float64{"tasks_per_s": 14500, "submit_per_s": 80000, "cpu_ms_per_1k_asynq": 70, "cpu_ms_per_1k_redis": 40, "rss_mb": 60})
		add("throughput", "asynq (tuned 10ms)", run, nil, map[string]float64{"tasks_per_s": 15200, "submit_per_s": 79000, "cpu_ms_per_1k_asynq": 72, "cpu_ms_per_1k_redis": 41, "rss_mb": 61})
		add("throughput", "ferry (http backend)", run, nil, map[string]float64{"tasks_per_s": 6100, "submit_per_s": 40000, "cpu_ms_per_1k_ferry": 190, "cpu_ms_per_1k_function": 35, "rss_mb": 190})
		add("throughput", "ferry submit API alone", run, nil, map[string]float64{"submit_per_s": 52000, "goroutines": 140})
		add("throughput", "wrk → trivial Go server", run, nil, map[string]float64{"req_per_s": 75000})
		add("latency", "ferry (go backend)", run, nil, map[string]float64{"rate_per_s": 4500, "p50_ms": 1.2, "p99_ms": 4.8, "p999_ms": 11})
		add("latency", "asynq (default)", run, nil, map[string]float64{"rate_per_s": 7000, "p50_ms": 510, "p99_ms": 1450, "p999_ms": 1490})
		add("latency", "asynq (tuned 10ms)", run, nil, map[string]float64{"rate_per_s": 7500, "p50_ms": 6, "p99_ms": 14, "p999_ms": 22})
		for _, b := range []string{"1000", "100000", "1000000"} {
			f := map[string]float64{"1000": 1, "100000": 0.97, "1000000": 0.92}[b]
			rss := map[string]float64{"1000": 60, "100000": 140, "1000000": 820}[b]
			add("scale", "ferry (go backend)", run, map[string]string{"backlog": b},
				map[string]float64{"tasks_per_s": 9000 * f, "p99_ms": 5 / f, "rss_mb": rss, "startup_s": 0.2 / f})
		}
		add("fairness", "ferry (go backend)", run, map[string]string{"tenants": "1000"}, map[string]float64{"jain": 0.93, "small_p99_ms": 8.5, "big_p99_ms": 210})
		raws := map[string]string{"kafka": "kafka-go raw consumer", "rabbitmq": "amqp091-go raw consumer", "redis": "go-redis raw consumer", "rocketmq": "rocketmq-client-go raw consumer"}
		rates := map[string]float64{"kafka": 400000, "rabbitmq": 50000, "redis": 1100000, "rocketmq": 60000}
		for _, br := range []string{"rocketmq", "kafka", "redis", "rabbitmq"} {
			for _, batch := range []string{"1", "100"} {
				frac := map[string]float64{"1": 0.04, "100": 0.6}[batch]
				add("pollers", "ferry trigger", run, map[string]string{"broker": br, "batch": batch},
					map[string]float64{"msgs_per_s": rates[br] * frac, "invoked_per_s": rates[br] * frac, "s_to_commit": 1e6 / (rates[br] * frac)})
			}
			add("pollers", raws[br], run, map[string]string{"broker": br}, map[string]float64{"msgs_per_s": rates[br], "s_to_commit": 1e6 / rates[br]})
		}
	}
	return rs
}

func sampleInput(dir string) Input {
	os.MkdirAll(filepath.Join(dir, "bench"), 0o755)
	prof := "File: ferry\nType: cpu\nDuration: 30s, Total samples = 52s (173%)\nShowing nodes accounting for 40s, 77% of 52s total\n" +
		"      flat  flat%   sum%        cum   cum%\n"
	for i := range 30 {
		prof += "     1.00s  1.92%  1.92%      1.00s  1.92%  pkg.func" + string(rune('A'+i%26)) + "\n"
	}
	os.WriteFile(filepath.Join(dir, "bench", "ferry-cpu.txt"), []byte(prof), 0o644)
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	m := DescribeMachine(map[string]string{"redis": "7.0.15", "asynq": "v0.26.0"})
	m.Date = start
	return Input{
		Results:  synthetic(),
		Machine:  m,
		Commands: []string{"make bench", "go run ./test/bench -runs 3 -out docs"},
		Started:  start,
		Finished: start.Add(63*time.Minute + 5*time.Second),
		Profiles: map[string]string{"ferry CPU, throughput (go backend)": "bench/ferry-cpu.txt", "missing": "bench/nope.txt"},
		Notes:    []string{"Ferry trails asynq on throughput because of *synthetic data*."},
	}
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, sampleInput(dir)); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"throughput.png", "throughput-cpu.png", "latency.png", "scale.png", "fairness.png", "pollers.png"} {
		b, err := os.ReadFile(filepath.Join(dir, "bench", f))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if w := img.Bounds().Dx(); w < 700 || img.Bounds().Dy() != 450 {
			t.Errorf("%s is %v", f, img.Bounds())
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(md)
	for _, want := range []string{
		"# Ferry benchmarks",
		"2025-06-01, 12:00–13:03 UTC (1 h 03 min)",
		"median of 3 runs",
		"load generator runs on",
		"| redis | 7.0.15 |",
		"## Throughput: async tasks end to end",
		"| system | tasks/s | submitted/s | requests/s | CPU ms / 1k tasks, all processes |",
		"| ferry (go backend) | 9,",
		"| ferry submit API alone | — | 5",
		"| goroutines | runs |",
		"| ferry (go backend) / asynq (default) | tasks/s | **0.6",
		"| ferry (http backend) / wrk → trivial Go server | tasks/s ÷ requests/s | **0.08",
		"| ferry (go backend) / ferry submit API alone | submitted/s |",
		"| ferry (go backend) / asynq (tuned 10ms) | p99 (ms) | **0.3",
		"| system | backlog | tasks/s | p99 (ms) | startup (s) | RSS (MB) | runs |",
		"| ferry (go backend) | 1k |",
		"| ferry (go backend): 1M vs 1k queued | tasks/s | **0.",
		"| fairness | ferry (go backend) | Jain index | **0.9",
		"| ferry trigger | kafka | 100 |",
		"| kafka: ferry trigger [batch=100] / kafka-go raw consumer | msgs/s | **0.",
		"| rocketmq: ferry trigger [batch=1] / rocketmq-client-go raw consumer | msgs/s |",
		"![Throughput per system, with ceilings](bench/throughput.png)",
		"![Dispatch rate, p99 and RSS against backlog](bench/scale.png)",
		"[`bench/ferry-cpu.txt`](bench/ferry-cpu.txt)",
		"      flat  flat%   sum%        cum   cum%\n     1.00s",
		"_Profile not readable",
		"because of *synthetic data*.",
		"## How to reproduce\n\n```sh\nmake bench\ngo run ./test/bench -runs 3 -out docs\n```",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	// The profile is cut after 15 entries.
	if strings.Contains(s, "pkg.funcP") || !strings.Contains(s, "pkg.funcO") {
		t.Errorf("profile not cut at 15 entries")
	}
	// Sections in workload order; brokers alphabetically.
	order := []string{"## Throughput", "## Latency", "## Scale", "## Fairness", "## Pollers", "## Profiles", "## Notes", "## How to reproduce"}
	last := -1
	for _, h := range order {
		i := strings.Index(s, h)
		if i < last {
			t.Errorf("%q out of order", h)
		}
		last = i
	}
	if strings.Index(s, "| ferry trigger | kafka |") > strings.Index(s, "| ferry trigger | rabbitmq |") {
		t.Errorf("pollers not sorted by broker")
	}

	// Same input, same bytes.
	dir2 := t.TempDir()
	if err := Write(dir2, sampleInput(dir2)); err != nil {
		t.Fatal(err)
	}
	md2, _ := os.ReadFile(filepath.Join(dir2, "benchmarks.md"))
	if strings.ReplaceAll(string(md2), dir2, "") != strings.ReplaceAll(s, dir, "") {
		t.Errorf("output not deterministic:\n%s\n----\n%s", md2, s)
	}
}

func TestWriteEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := Write(dir, Input{}); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "benchmarks.md"))
	if !strings.Contains(string(md), "No results were recorded.") {
		t.Errorf("empty report:\n%s", md)
	}
}

func TestTickLabel(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.5: "0.5", 3: "3", 250: "250", 2500: "2.5k", 5000: "5k", 50000: "50k", 1.5e6: "1.5M", 1e7: "10M"} {
		if got := tickLabel(v); got != want {
			t.Errorf("tickLabel(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestWriteSparse(t *testing.T) {
	dir := t.TempDir()
	rs := []results.Result{
		{Workload: "throughput", System: "ferry (go backend)", Run: 1, Metrics: map[string]float64{"tasks_per_s": 100}},
		{Workload: "micro", System: "pick", Run: 1, Metrics: map[string]float64{"ns_per_op": 42.5}},
	}
	if err := Write(dir, Input{Results: rs}); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "benchmarks.md"))
	s := string(md)
	for _, want := range []string{"| ferry (go backend) | 100 | 1 |", "## micro", "| pick | 42.5 | 1 |", "median of 1 run"} {
		if !strings.Contains(s, want) {
			t.Errorf("markdown lacks %q:\n%s", want, s)
		}
	}
	for _, absent := range []string{"## Latency", "**Ratios**", "## At a glance", "## Machine", "## Profiles"} {
		if strings.Contains(s, absent) {
			t.Errorf("markdown has %q", absent)
		}
	}
}

// TestSample writes a sample report from synthetic data, into
// $REPORT_SAMPLE_DIR to look at (REPORT_SAMPLE_DIR=/tmp/report-sample go
// test -run Sample ./report/), else into a temporary directory.
func TestSample(t *testing.T) {
	dir := os.Getenv("REPORT_SAMPLE_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	if err := Write(dir, sampleInput(dir)); err != nil {
		t.Fatal(err)
	}
}
