// Package report turns the results of `make bench` into
// docs/benchmarks.md and its PNG charts: one section per workload with
// medians, min–max spreads and the ratios that matter (Ferry against its
// peers and against the ceilings, all measured in the same run).
package report

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ferrydev/ferry/test/bench/results"
)

// Input is everything a report is made of.
type Input struct {
	Results []results.Result
	Machine Machine
	// Commands are the exact commands that produced the figures.
	Commands []string
	// Started and Finished bound the bench run; zero values are left out.
	Started, Finished time.Time
	// Profiles maps a name to the path, relative to the report's
	// directory, of a `go tool pprof -top` text file; the report links it
	// and quotes its top lines.
	Profiles map[string]string
	// Notes are free paragraphs (markdown) printed after the profiles.
	Notes []string
	// Parts are parts measured after the run (with -only), whose figures
	// replaced that run's: the report says when, and how to reproduce them.
	Parts []Part
}

// Part is a later run of some parts of the bench.
type Part struct {
	Name              string // the parts, as -only names them: "cluster"
	Started, Finished time.Time
	Commands          []string
}

// ChartDir is the directory, under the report's directory, of the charts.
const ChartDir = "bench"

// profileLines is how many entries of a pprof -top listing are quoted.
const profileLines = 15

// Write writes dir/benchmarks.md and its PNG charts under dir/bench/.
func Write(dir string, in Input) error {
	chartDir := filepath.Join(dir, ChartDir)
	if err := os.MkdirAll(chartDir, 0o755); err != nil {
		return err
	}
	workloads, groups := aggregate(in.Results)
	charts := map[string][]chart{}
	for _, w := range workloads {
		cs, err := drawCharts(chartDir, w, groups[w])
		if err != nil {
			return fmt.Errorf("report: %s charts: %w", w, err)
		}
		charts[w] = cs
	}
	md := markdown(dir, in, workloads, groups, charts)
	return os.WriteFile(filepath.Join(dir, "benchmarks.md"), md, 0o644)
}

// workloadTitles and workloadAbout introduce the known workloads.
var workloadTitles = map[string]string{
	results.Throughput: "Throughput: async tasks end to end",
	results.Latency:    "Latency: submit to backend start",
	results.Scale:      "Scale: dispatch against the backlog",
	results.Fairness:   "Fairness: one tenant with half of the tasks",
	results.Pollers:    "Pollers: triggers against raw consumers",
	results.Cluster:    "Cluster: Ferry nodes on one Redis against asynq",
}

var workloadAbout = map[string]string{
	results.Throughput: "Tasks are submitted over HTTP by a concurrent client to a no-op backend, until every task has succeeded. " +
		"Ferry runs with its in-process Go backend and with its HTTP backend (a local no-op function server); " +
		"asynq runs on the same Redis with an equivalent no-op handler. The ceilings are Ferry's submit API alone " +
		"and `wrk` against a trivial Go HTTP server. CPU is CPU-milliseconds per 1,000 tasks of each process " +
		"(from `/proc/PID/stat`), RSS the peak resident set (`VmHWM`).",
	results.Latency: "Time from submit to the backend starting the task, at an offered rate of about half the peak " +
		"rate measured for each system.",
	results.Scale: "Dispatch rate, p99 latency and memory with tasks already queued before the clock starts. " +
		"The cost per task should stay flat as the backlog grows.",
	results.Fairness: "1,000 tenants, one of which submits half of all tasks. Jain's index of per-tenant throughput, " +
		"(Σx)² / (n·Σx²), is 1 when every tenant gets the same rate; the small tenants' p99 latency shows " +
		"whether the big tenant crowds them out.",
	results.Pollers: "Messages pre-produced to each broker are consumed by a Ferry trigger with a no-op backend " +
		"(batch 1 and batch 100) until committed. The ceiling is the same client library consuming and " +
		"committing with no invocation, in the same run, on the same topic size.",
	results.Cluster: "1, 2 and 3 Ferry nodes (`ferry serve` children with `store: {redis: …}` on one prefix, the in-process " +
		"no-op Go backend) share the Redis that asynq uses, with the same total concurrency: 64 workers in all " +
		"(split over the nodes, the tenant's and function's `max_concurrency` 64 cluster-wide) against asynq's " +
		"`Concurrency` 64 at its tuned 10 ms `TaskCheckInterval`. Both are measured the same way: a closed loop of 32 " +
		"clients submits while the system runs the tasks (Ferry over HTTP, to the nodes round-robin; asynq with its " +
		"client library, straight to Redis), and tasks/s counts from the first submit until every task is done. CPU is " +
		"CPU-ms per 1,000 tasks of the system's processes (all Ferry nodes summed) and of Redis (`INFO cpu` " +
		"used_cpu_sys + used_cpu_user); total is the two, without the load generator's (shown apart: an HTTP client " +
		"for Ferry, asynq's Redis client for asynq). p99 is submit → backend start under an open loop at half of the " +
		"system's median peak rate, on the same processes right after the closed loop.",
}

// summaryMetrics are the ratios repeated in the "At a glance" section.
var summaryMetrics = map[string]bool{
	"tasks_per_s": true, "submit_per_s": true, "p99_ms": true, "msgs_per_s": true, "invoked_per_s": true,
	"small_p99_ms": true, "jain": true, derivedCPUTotal: true,
}

func markdown(dir string, in Input, workloads []string, groups map[string][]*group, charts map[string][]chart) []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	p("# Ferry benchmarks\n\n")
	p("%s\n\n", runSentence(in, workloads, groups))
	p("> **How to read these figures.** %s Every comparison is a ratio measured in the same run, "+
		"runs interleaved (A B A B …), median of %s with the min–max spread in parentheses.\n\n",
		loadCaveat(in.Machine), runCount(workloads, groups))

	if rows := in.Machine.rows(); len(rows) > 0 {
		p("## Machine\n\n| | |\n| --- | --- |\n")
		for _, r := range rows {
			p("| %s | %s |\n", mdEscape(r[0]), mdEscape(r[1]))
		}
		p("\n")
	}

	all := map[string][]ratio{}
	for _, w := range workloads {
		all[w] = ratios(w, groups[w])
	}
	if s := summary(workloads, groups, all); s != "" {
		p("## At a glance\n\n%s\n", s)
	}

	for _, w := range workloads {
		title := workloadTitles[w]
		if title == "" {
			title = w
		}
		p("## %s\n\n", title)
		if about := workloadAbout[w]; about != "" {
			p("%s\n\n", about)
		}
		if w == results.Cluster {
			p("%s\n", clusterTable(groups[w]))
			if t := clusterCoresTable(groups[w]); t != "" {
				p("Where the %s went during each closed loop (medians; \"other processes\" are everything else on the machine, "+
					"the other engineers' work included, so a run with many is a noisy one):\n\n%s\n", cpusPhrase(in.Machine), t)
			}
			p("The other figures, and every parameter:\n\n%s\n", groupTableExcept(groups[w], clusterShown))
		} else {
			p("%s\n", groupTable(groups[w]))
		}
		if rs := all[w]; len(rs) > 0 {
			p("**Ratios** (from the medians; the per-run range divides the two sides run by run):\n\n%s\n", ratioTable(rs))
		}
		for _, c := range charts[w] {
			p("![%s](%s/%s)\n\n", c.alt, ChartDir, c.file)
		}
	}

	if len(in.Profiles) > 0 {
		p("## Profiles\n\n")
		names := make([]string, 0, len(in.Profiles))
		for n := range in.Profiles {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			path := filepath.ToSlash(in.Profiles[n])
			p("### %s\n\n[`%s`](%s)\n\n", n, path, path)
			top, err := profileTop(filepath.Join(dir, filepath.FromSlash(path)), profileLines)
			if err != nil {
				p("_Profile not readable: %v._\n\n", err)
				continue
			}
			p("```text\n%s\n```\n\n", top)
		}
	}
	if len(in.Notes) > 0 {
		p("## Notes\n\n")
		for _, n := range in.Notes {
			p("%s\n\n", strings.TrimSpace(n))
		}
	}
	if len(in.Commands) > 0 {
		cmds := slices.Clone(in.Commands)
		for _, part := range in.Parts {
			cmds = append(cmds, "", "# "+part.Name+", measured separately:")
			cmds = append(cmds, part.Commands...)
		}
		p("## How to reproduce\n\n```sh\n%s\n```\n", strings.Join(cmds, "\n"))
	}
	return bytes.TrimRight(b.Bytes(), "\n")
}

// runSentence says what ran, when and for how long.
func runSentence(in Input, workloads []string, groups map[string][]*group) string {
	var ws []string
	for _, w := range workloads {
		systems := map[string]bool{}
		for _, g := range groups[w] {
			systems[g.System] = true
		}
		unit := "systems"
		if len(systems) == 1 {
			unit = "system"
		}
		ws = append(ws, fmt.Sprintf("%s (%d %s)", w, len(systems), unit))
	}
	s := "Generated by `make bench`"
	if !in.Started.IsZero() {
		start := in.Started.UTC()
		s += " on " + start.Format("2006-01-02") + ", " + start.Format("15:04")
		if !in.Finished.IsZero() {
			end := in.Finished.UTC()
			layout := "15:04"
			if end.Format("2006-01-02") != start.Format("2006-01-02") {
				layout = "2006-01-02 15:04"
			}
			s += "–" + end.Format(layout) + " UTC (" + formatDuration(end.Sub(start)) + ")"
		} else {
			s += " UTC"
		}
	}
	if len(ws) == 0 {
		return s + ". No results were recorded."
	}
	s += ". Workloads: " + strings.Join(ws, ", ") + "."
	for _, part := range in.Parts {
		s += " The " + part.Name + " figures come from a later run of that part alone"
		if !part.Started.IsZero() {
			start := part.Started.UTC()
			s += " on " + start.Format("2006-01-02") + ", " + start.Format("15:04")
			if !part.Finished.IsZero() {
				s += "–" + part.Finished.UTC().Format("15:04") + " UTC (" + formatDuration(part.Finished.Sub(part.Started)) + ")"
			} else {
				s += " UTC"
			}
		}
		s += "."
	}
	return s
}

// loadCaveat warns that the load generator shares the machine's cores.
func loadCaveat(m Machine) string {
	cores := "the machine's cores"
	if m.CPUs > 0 {
		cores = fmt.Sprintf("the %d logical CPUs", m.CPUs)
	}
	return "The machine is shared and small, and the load generator runs on " + cores +
		" it shares with the system under test, so absolute figures are pessimistic and noisy."
}

// cpusPhrase is "2 CPUs" or "CPUs".
func cpusPhrase(m Machine) string {
	if m.CPUs > 0 {
		return fmt.Sprintf("%d CPUs", m.CPUs)
	}
	return "CPUs"
}

// runCount is "3 runs" or "3–5 runs", over every group.
func runCount(workloads []string, groups map[string][]*group) string {
	lo, hi := 0, 0
	for _, w := range workloads {
		for _, g := range groups[w] {
			if lo == 0 || g.Runs < lo {
				lo = g.Runs
			}
			hi = max(hi, g.Runs)
		}
	}
	switch {
	case hi == 0:
		return "N runs"
	case lo == hi && hi == 1:
		return "1 run"
	case lo == hi:
		return fmt.Sprintf("%d runs", hi)
	}
	return fmt.Sprintf("%d–%d runs", lo, hi)
}

// groupTable renders one workload's groups: system, parameters, the
// median and spread of every metric, and the number of runs.
func groupTable(gs []*group) string { return groupTableExcept(gs, nil) }

// groupTableExcept is groupTable without the metrics in skip (shown in
// another table).
func groupTableExcept(gs []*group, skip map[string]bool) string {
	keys := paramKeys(gs)
	set := map[string]bool{}
	for _, g := range gs {
		for m := range g.Metrics {
			if !skip[m] {
				set[m] = true
			}
		}
	}
	var ms []string
	for m := range set {
		ms = append(ms, m)
	}
	ms = sortMetrics(ms)

	var b strings.Builder
	head, rule := []string{"system"}, []string{"---"}
	for _, k := range keys {
		head, rule = append(head, k), append(rule, "---")
	}
	for _, m := range ms {
		head, rule = append(head, metricLabel(m)), append(rule, "---:")
	}
	head, rule = append(head, "runs"), append(rule, "---:")
	row(&b, head)
	row(&b, rule)
	for _, g := range gs {
		cells := []string{g.System}
		for _, k := range keys {
			cells = append(cells, humanCount(g.Params[k]))
		}
		for _, m := range ms {
			s, ok := g.Metrics[m]
			if !ok {
				cells = append(cells, "—")
				continue
			}
			cells = append(cells, formatStat(m, s))
		}
		cells = append(cells, fmt.Sprint(g.Runs))
		row(&b, cells)
	}
	return b.String()
}

// ratioTable renders the ratios of one workload.
func ratioTable(rs []ratio) string {
	var b strings.Builder
	row(&b, []string{"comparison", "figure", "ratio", "medians", "per-run range"})
	row(&b, []string{"---", "---", "---:", "---:", "---:"})
	for _, r := range rs {
		row(&b, []string{r.Label, r.Metric, "**" + formatRatio(r.Value) + "**",
			formatMetric(r.NumM, r.Num) + " / " + formatMetric(r.DenM, r.Den), runRange(r)})
	}
	b.WriteString("\nFor rates a ratio above 1 favours the left-hand side; for latency, CPU and memory, a ratio below 1 does.\n")
	return b.String()
}

func runRange(r ratio) string {
	if !finite(r.RunMin) || !finite(r.RunMax) {
		return "—"
	}
	lo, hi := sig3(r.RunMin), sig3(r.RunMax)
	if lo == hi {
		return lo + "×"
	}
	return lo + "–" + hi + "×"
}

// summary collects the headline ratios of every workload, and the Jain
// index of each fairness system.
func summary(workloads []string, groups map[string][]*group, all map[string][]ratio) string {
	var b strings.Builder
	n := 0
	row(&b, []string{"workload", "comparison", "figure", "value", "per-run range"})
	row(&b, []string{"---", "---", "---", "---:", "---:"})
	for _, w := range workloads {
		if w == results.Fairness {
			for _, g := range groups[w] {
				if s, ok := g.Metrics["jain"]; ok {
					spread := "—"
					if lo, hi := formatMetric("jain", s.Min), formatMetric("jain", s.Max); s.N > 1 && lo != hi {
						spread = lo + "–" + hi
					}
					row(&b, []string{w, g.label(), "Jain index", "**" + formatMetric("jain", s.Median) + "**", spread})
					n++
				}
			}
		}
		for _, r := range all[w] {
			if summaryMetrics[r.NumM] && !r.detail {
				row(&b, []string{w, r.Label, r.Metric, "**" + formatRatio(r.Value) + "**", runRange(r)})
				n++
			}
		}
	}
	if n == 0 {
		return ""
	}
	return b.String()
}

func row(b *strings.Builder, cells []string) {
	for i, c := range cells {
		if c == "" {
			c = " "
		}
		cells[i] = mdEscape(c)
	}
	b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
}

// profileTop returns the header of a `pprof -top` listing and its first n
// entries (all of a file that is not such a listing, up to n+8 lines).
func profileTop(path string, n int) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	end := min(len(lines), n+8)
	for i, l := range lines {
		if strings.Contains(l, "flat%") && strings.Contains(l, "cum%") {
			end = min(len(lines), i+1+n)
			break
		}
	}
	return strings.Join(lines[:end], "\n"), nil
}
