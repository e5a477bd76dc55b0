package report

import (
	"math"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/test/bench/results"
)

func TestSummarize(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		in   []float64
		want Stat
		ok   bool
	}{
		{"empty", nil, Stat{}, false},
		{"only NaN", []float64{nan, math.Inf(1)}, Stat{}, false},
		{"one", []float64{5}, Stat{5, 5, 5, 1}, true},
		{"odd", []float64{3, 1, 2}, Stat{2, 1, 3, 3}, true},
		{"even", []float64{4, 1, 3, 2}, Stat{2.5, 1, 4, 4}, true},
		{"skips NaN", []float64{10, nan, 30, 20}, Stat{20, 10, 30, 3}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := summarize(tt.in)
			if ok != tt.ok || got != tt.want {
				t.Fatalf("summarize(%v) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func res(w, sys string, run int, params map[string]string, ms map[string]float64) results.Result {
	return results.Result{Workload: w, System: sys, Run: run, Params: params, Metrics: ms}
}

func TestAggregateGroupsAndStats(t *testing.T) {
	rs := []results.Result{
		res("throughput", "asynq (default)", 1, nil, map[string]float64{"tasks_per_s": 10000, "cpu_ms_per_1k_asynq": 70, "cpu_ms_per_1k_redis": 40}),
		res("throughput", "ferry (go backend)", 1, nil, map[string]float64{"tasks_per_s": 12000}),
		res("throughput", "asynq (default)", 2, nil, map[string]float64{"tasks_per_s": 9000, "cpu_ms_per_1k_asynq": 80, "cpu_ms_per_1k_redis": 50}),
		res("throughput", "ferry (go backend)", 2, nil, map[string]float64{"tasks_per_s": 13000}),
		res("throughput", "asynq (default)", 3, nil, map[string]float64{"tasks_per_s": 11000, "cpu_ms_per_1k_asynq": 60, "cpu_ms_per_1k_redis": 45}),
		res("custom", "x", 1, nil, map[string]float64{"weird": 1}),
		res("latency", "ferry (go backend)", 1, nil, map[string]float64{"p99_ms": 3}),
	}
	ws, gs := aggregate(rs)
	if got, want := strings.Join(ws, ","), "throughput,latency,custom"; got != want {
		t.Fatalf("workloads = %s, want %s", got, want)
	}
	tp := gs["throughput"]
	if len(tp) != 2 || tp[0].System != "ferry (go backend)" {
		t.Fatalf("throughput groups = %v, want ferry first", labels(tp))
	}
	a := tp[1]
	if a.Runs != 3 {
		t.Errorf("asynq runs = %d, want 3", a.Runs)
	}
	if s := a.Metrics["tasks_per_s"]; s != (Stat{10000, 9000, 11000, 3}) {
		t.Errorf("asynq tasks_per_s = %+v", s)
	}
	// The derived CPU total is summed per run, then aggregated: 110, 130, 105.
	if s := a.Metrics[derivedCPUTotal]; s != (Stat{110, 105, 130, 3}) {
		t.Errorf("asynq cpu total = %+v", s)
	}
	if tp[0].has(derivedCPUTotal) {
		t.Errorf("ferry has a CPU total without CPU figures")
	}
}

func labels(gs []*group) []string {
	var out []string
	for _, g := range gs {
		out = append(out, g.label())
	}
	return out
}

func TestSortGroups(t *testing.T) {
	p := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tests := []struct {
		name string
		in   []results.Result
		want []string
	}{
		{
			name: "ferry first, then first appearance",
			in: []results.Result{
				res("throughput", "wrk → trivial Go server", 1, nil, nil),
				res("throughput", "asynq (default)", 1, nil, nil),
				res("throughput", "ferry (http backend)", 1, nil, nil),
				res("throughput", "ferry submit API alone", 1, nil, nil),
				res("throughput", "ferry (go backend)", 1, nil, nil),
			},
			want: []string{"ferry (http backend)", "ferry (go backend)", "wrk → trivial Go server", "asynq (default)", "ferry submit API alone"},
		},
		{
			name: "backlog numerically",
			in: []results.Result{
				res("scale", "ferry", 1, p("backlog", "1000000"), nil),
				res("scale", "ferry", 1, p("backlog", "1000"), nil),
				res("scale", "ferry", 1, p("backlog", "100000"), nil),
			},
			want: []string{"ferry [backlog=1k]", "ferry [backlog=100k]", "ferry [backlog=1M]"},
		},
		{
			name: "pollers by broker, ferry by batch, then raw",
			in: []results.Result{
				res("pollers", "sarama raw", 1, p("broker", "redis"), nil),
				res("pollers", "ferry trigger", 1, p("broker", "redis", "batch", "100"), nil),
				res("pollers", "kafka-go raw consumer", 1, nil, nil),
				res("pollers", "ferry trigger", 1, p("broker", "kafka", "batch", "100"), nil),
				res("pollers", "ferry trigger", 1, p("broker", "kafka", "batch", "1"), nil),
			},
			want: []string{"ferry trigger [broker=kafka, batch=1]", "ferry trigger [broker=kafka, batch=100]",
				"kafka-go raw consumer", "ferry trigger [broker=redis, batch=100]", "sarama raw [broker=redis]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws, gs := aggregate(tt.in)
			got := strings.Join(labels(gs[ws[0]]), " | ")
			if want := strings.Join(tt.want, " | "); got != want {
				t.Fatalf("order:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestRatios(t *testing.T) {
	rs := []results.Result{}
	for run := 1; run <= 3; run++ {
		f := float64(run)
		rs = append(rs,
			res("throughput", "ferry (go backend)", run, nil, map[string]float64{"tasks_per_s": 12000 + 1000*f, "submit_per_s": 40000}),
			res("throughput", "asynq (default)", run, nil, map[string]float64{"tasks_per_s": 10000, "submit_per_s": 80000}),
			res("throughput", "asynq (tuned 10ms)", run, nil, map[string]float64{"tasks_per_s": 15000}),
			res("throughput", "ferry (http backend)", run, nil, map[string]float64{"tasks_per_s": 6000, "submit_per_s": 30000}),
			res("throughput", "wrk → trivial Go server", run, nil, map[string]float64{"req_per_s": 75000}),
			res("throughput", "ferry submit API alone", run, nil, map[string]float64{"submit_per_s": 50000}),
			res("latency", "ferry (go backend)", run, nil, map[string]float64{"p99_ms": 5}),
			res("latency", "asynq (default)", run, nil, map[string]float64{"p99_ms": 1450}),
			res("scale", "ferry (go backend)", run, map[string]string{"backlog": "1000"}, map[string]float64{"tasks_per_s": 10000}),
			res("scale", "ferry (go backend)", run, map[string]string{"backlog": "1000000"}, map[string]float64{"tasks_per_s": 9000}),
			res("scale", "ferry (go backend)", run, map[string]string{"backlog": "100000"}, map[string]float64{"tasks_per_s": 9500}),
			res("pollers", "ferry trigger", run, map[string]string{"broker": "kafka", "batch": "100"}, map[string]float64{"msgs_per_s": 50000}),
			res("pollers", "ferry trigger", run, map[string]string{"broker": "kafka", "batch": "1"}, map[string]float64{"msgs_per_s": 5000}),
			res("pollers", "kafka-go raw consumer", run, map[string]string{"broker": "kafka"}, map[string]float64{"msgs_per_s": 100000}),
			res("pollers", "ferry trigger", run, map[string]string{"broker": "redis", "batch": "1"}, map[string]float64{"msgs_per_s": 1}),
		)
	}
	_, gs := aggregate(rs)
	type want struct {
		label, metric string
		value         float64
		runMin        float64
	}
	tests := []struct {
		workload string
		want     []want
	}{
		{"throughput", []want{
			{"ferry (go backend) / asynq (default)", "tasks/s", 1.4, 1.3},
			{"ferry (go backend) / asynq (default)", "submitted/s", 0.5, 0.5},
			{"ferry (go backend) / asynq (tuned 10ms)", "tasks/s", 14000.0 / 15000, 13000.0 / 15000},
			{"ferry (http backend) / wrk → trivial Go server", "tasks/s ÷ requests/s", 0.08, 0.08},
			{"ferry (go backend) / ferry submit API alone", "submitted/s", 0.8, 0.8},
			{"ferry (http backend) / ferry submit API alone", "submitted/s", 0.6, 0.6},
		}},
		{"latency", []want{{"ferry (go backend) / asynq (default)", "p99 (ms)", 5.0 / 1450, 5.0 / 1450}}},
		{"scale", []want{{"ferry (go backend): 1M vs 1k queued", "tasks/s", 0.9, 0.9}}},
		{"pollers", []want{
			{"kafka: ferry trigger [batch=1] / kafka-go raw consumer", "msgs/s", 0.05, 0.05},
			{"kafka: ferry trigger [batch=100] / kafka-go raw consumer", "msgs/s", 0.5, 0.5},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.workload, func(t *testing.T) {
			got := ratios(tt.workload, gs[tt.workload])
			if len(got) != len(tt.want) {
				t.Fatalf("got %d ratios, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Label != w.label || g.Metric != w.metric || math.Abs(g.Value-w.value) > 1e-9 || math.Abs(g.RunMin-w.runMin) > 1e-9 {
					t.Errorf("ratio %d = %q %q %v (runs from %v), want %q %q %v (from %v)",
						i, g.Label, g.Metric, g.Value, g.RunMin, w.label, w.metric, w.value, w.runMin)
				}
			}
		})
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		metric string
		v      float64
		want   string
	}{
		{"tasks_per_s", 6012.4, "6,012"},
		{"tasks_per_s", 1234567, "1,234,567"},
		{"tasks_per_s", 42.345, "42.3"},
		{"p99_ms", 1453.2, "1,450"},
		{"p99_ms", 14, "14.0"},
		{"p99_ms", 2.5, "2.50"},
		{"p99_ms", 0.01234, "0.0123"},
		{"p99_ms", 9.996, "10.0"},
		{"p99_ms", 99.96, "100"},
		{"jain", 0.99871, "0.999"},
		{"rss_mb", 718.4, "718"},
		{"rss_mb", 45.67, "45.7"},
		{"s_to_commit", 12.345, "12.3"},
		{"unknown_metric", 0, "0"},
		{"tasks_per_s", math.NaN(), "—"},
	}
	for _, tt := range tests {
		if got := formatMetric(tt.metric, tt.v); got != tt.want {
			t.Errorf("formatMetric(%s, %v) = %q, want %q", tt.metric, tt.v, got, tt.want)
		}
	}
	stats := []struct {
		s    Stat
		want string
	}{
		{Stat{6012, 5800, 6150, 3}, "6,012 (5,800–6,150)"},
		{Stat{6012, 6012, 6012, 3}, "6,012"},
		{Stat{6012, 5800, 6150, 1}, "6,012"},
	}
	for _, tt := range stats {
		if got := formatStat("tasks_per_s", tt.s); got != tt.want {
			t.Errorf("formatStat(%+v) = %q, want %q", tt.s, got, tt.want)
		}
	}
	counts := map[string]string{"1000": "1k", "100000": "100k", "1000000": "1M", "200000": "200k", "1500": "1500", "100": "100", "x": "x"}
	for in, want := range counts {
		if got := humanCount(in); got != want {
			t.Errorf("humanCount(%s) = %s, want %s", in, got, want)
		}
	}
	if got := formatRatio(0.41234); got != "0.412×" {
		t.Errorf("formatRatio = %s", got)
	}
}

func TestSortMetrics(t *testing.T) {
	in := []string{"rss_mb", "zeta", "cpu_ms_per_1k_zz", "cpu_ms_per_1k_ferry", "tasks_per_s", "alpha", derivedCPUTotal, "submit_per_s"}
	want := "tasks_per_s submit_per_s cpu_ms_per_1k_total cpu_ms_per_1k_ferry cpu_ms_per_1k_zz rss_mb alpha zeta"
	if got := strings.Join(sortMetrics(in), " "); got != want {
		t.Fatalf("sortMetrics:\n got %s\nwant %s", got, want)
	}
}

func TestMachineParsers(t *testing.T) {
	model, n := parseCPUInfo("processor\t: 0\nmodel name\t: AMD  EPYC 7B13\nprocessor\t: 1\nmodel name\t: AMD EPYC 7B13\n")
	if model != "AMD EPYC 7B13" || n != 2 {
		t.Errorf("parseCPUInfo = %q, %d", model, n)
	}
	if got := parseMemInfo("MemTotal:        8141320 kB\nMemFree: 1 kB\n"); got != 8141320*1024 {
		t.Errorf("parseMemInfo = %d", got)
	}
	if got := parseOSRelease("NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"); got != "Debian GNU/Linux 12 (bookworm)" {
		t.Errorf("parseOSRelease = %q", got)
	}
	m := DescribeMachine(map[string]string{"redis": "7.0.15"})
	if m.CPUs < 1 || m.GoVersion == "" || m.Brokers["redis"] != "7.0.15" {
		t.Errorf("DescribeMachine = %+v", m)
	}
}
