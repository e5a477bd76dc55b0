package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/bench/results"
)

// clusterResults are three interleaved runs of the cluster workload.
func clusterResults() []results.Result {
	var rs []results.Result
	for run := 1; run <= 3; run++ {
		f := 1 + 0.02*float64(run-2)
		rs = append(rs, results.Result{Workload: results.Cluster, System: "asynq (tuned 10ms)", Run: run,
			Params: map[string]string{"nodes": "1"},
			Metrics: map[string]float64{"tasks_per_s": 4000 * f, "cpu_ms_per_1k_asynq": 120, "cpu_ms_per_1k_redis": 100,
				"generator_cpu_ms_per_1k": 30, "p99_ms": 20, "rate_per_s": 2000, "machine_busy_cores": 1.9,
				"redis_main_run_pct": 45, "redis_main_wait_pct": 30}})
		for _, n := range []int{3, 1, 2} {
			rs = append(rs, results.Result{Workload: results.Cluster, System: "ferry ×" + itoa(n) + " (redis store)", Run: run,
				Params: map[string]string{"nodes": itoa(n)},
				Metrics: map[string]float64{"tasks_per_s": 2000 * f * (1 + 0.1*float64(n-1)), "cpu_ms_per_1k_ferry": 350,
					"cpu_ms_per_1k_redis": 300, "generator_cpu_ms_per_1k": 100, "p99_ms": 8, "rate_per_s": 1000}})
		}
	}
	return rs
}

func itoa(n int) string { return string(rune('0' + n)) }

func TestClusterSection(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	in := Input{
		Results: clusterResults(), Commands: []string{"make bench"}, Started: start, Finished: start.Add(time.Hour),
		Parts: []Part{{Name: "cluster", Started: start.Add(48 * time.Hour), Finished: start.Add(48*time.Hour + 5*time.Minute),
			Commands: []string{"cd test/bench && go run . -out ../../docs -only cluster -runs 3 -n 100000"}}},
	}
	if err := Write(dir, in); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(md)
	for _, want := range []string{
		"The cluster figures come from a later run of that part alone on 2025-06-03, 12:00–12:05 UTC (5 min 00 s).",
		"## Cluster: Ferry nodes on one Redis against asynq",
		"| system | nodes | tasks/s | ratio to asynq | CPU ms / 1k: system | CPU ms / 1k: Redis | CPU ms / 1k: total | p99 submit → start (ms) | at (tasks/s) | runs |",
		"| asynq (tuned 10ms) | 1 | 4,000 (3,920–4,080) | 1× | 120 | 100 | 220 | 20.0 | 2,000 | 3 |",
		"| ferry ×1 (redis store) | 1 | 2,000 (1,960–2,040) | 0.500× | 350 | 300 | 650 | 8.00 | 1,000 | 3 |",
		"| ferry ×3 (redis store) | 3 | 2,400 (2,352–2,448) | 0.600× |",
		"| asynq (tuned 10ms) | 1.90 | — | — | — | 45.0 | 30.0 | — | — |",
		"| cluster | ferry ×1 (redis store) / asynq (tuned 10ms) | tasks/s | **0.500×** |",
		"| cluster | ferry ×3 (redis store) / ferry ×1 (redis store) | tasks/s | **1.20×** |",
		"# cluster, measured separately:\ncd test/bench && go run . -out ../../docs -only cluster -runs 3 -n 100000\n```",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("markdown lacks %q:\n%s", want, s)
		}
	}
	// Rows: asynq, then Ferry by nodes; only the headline ratios at a glance.
	if a, one, three := strings.Index(s, "| asynq (tuned 10ms) | 1 |"), strings.Index(s, "| ferry ×1 (redis store) | 1 |"),
		strings.Index(s, "| ferry ×3 (redis store) | 3 |"); a > one || one > three {
		t.Errorf("cluster rows out of order")
	}
	glance := s[strings.Index(s, "## At a glance"):strings.Index(s, "## Cluster")]
	if strings.Contains(glance, "ferry ×2") {
		t.Errorf("detail ratios at a glance:\n%s", glance)
	}
}

func TestResultsRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.jsonl")
	if err := results.Remove(path, results.Cluster); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	keep := results.Result{Workload: results.Throughput, System: "x", Run: 1, Metrics: map[string]float64{"tasks_per_s": 1.5},
		Time: time.Date(2025, 6, 1, 12, 0, 0, 123, time.UTC)}
	for _, r := range append([]results.Result{keep}, clusterResults()...) {
		if err := results.Append(path, r); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := os.ReadFile(path)
	if err := results.Remove(path, results.Cluster); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(path)
	first, _, _ := strings.Cut(string(before), "\n")
	if string(after) != first+"\n" {
		t.Errorf("after Remove:\n%s\nwant the first line unchanged:\n%s", after, first)
	}
}
