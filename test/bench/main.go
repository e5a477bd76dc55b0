// Command bench is `make bench`: it measures Ferry side by side with its
// peers and with this machine's ceilings, in one run, and writes
// docs/benchmarks.md with its charts. The workloads (shared/bench.md,
// issue 5):
//
//  1. async throughput end to end: Ferry (Go and HTTP backends) against
//     asynq on the same Redis, and the ceilings (the submit API alone, asynq's
//     enqueue alone, wrk against a trivial Go server);
//  2. latency (submit → backend start) at half the peak rate;
//  3. scale: dispatch rate and latency with 1k, 100k and 1M tasks queued;
//  4. fairness: 1,000 tenants, one of them with half of the tasks;
//  5. pollers: each broker's trigger against the same client library
//     consuming with no invocation;
//  6. cluster: 1, 2 and 3 Ferry nodes sharing one Redis (store.redis)
//     against asynq on the same Redis, with the same total concurrency.
//
// -only picks parts (async: workloads 1–4, pollers, cluster). A run of
// every part replaces the results; a run of some parts replaces only
// theirs in OUT/bench/results.jsonl and keeps the others' figures, so the
// report shows them all (run.json notes the parts measured separately).
//
// Runs are interleaved and repeated (-runs, at least 3); the report shows
// medians with their spread and the ratios. The brokers must be up
// (test/brokers/up.sh; make bench starts them). Systems under test run in
// processes of their own (this binary re-executed in a child role), so CPU
// and memory are counted per process; the load generator is this process,
// on the same 2 cores.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ferrydev/ferry/test/bench/async"
	"github.com/ferrydev/ferry/test/bench/report"
	"github.com/ferrydev/ferry/test/bench/results"
)

func main() {
	if async.Child(os.Args[1:]) {
		return
	}
	out := flag.String("out", "docs", "directory of benchmarks.md (charts, results and profiles go to OUT/bench)")
	runs := flag.Int("runs", 3, "interleaved runs per comparison")
	n := flag.Int("n", 100000, "tasks of the async throughput workload (the cluster workload runs a fifth as many per system)")
	msgs := flag.Int("messages", 1000000, "messages per broker for the pollers (RabbitMQ and RocketMQ: a fifth)")
	quick := flag.Bool("quick", false, "smoke run with tiny sizes (figures not meaningful)")
	only := flag.String("only", strings.Join(allParts, ","), "parts to run: async, pollers, cluster (report only: none)")
	repo := flag.String("repo", "../..", "the Ferry repository root (for the pollers benchmark)")
	flag.Parse()
	if err := run(*out, *repo, *only, *runs, *n, *msgs, *quick); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// allParts are the parts of a full run, in the order they run.
var allParts = []string{"async", "pollers", "cluster"}

// partWorkloads are the workloads each part records.
var partWorkloads = map[string][]string{
	"async":   {results.Throughput, results.Latency, results.Scale, results.Fairness},
	"pollers": {results.Pollers},
	"cluster": {results.Cluster},
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func run(out, repo, only string, runs, n, msgs int, quick bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if runs < 1 {
		return fmt.Errorf("-runs must be at least 1")
	}
	if quick {
		msgs = 20000
	}
	benchDir := filepath.Join(out, "bench")
	profiles := filepath.Join(benchDir, "profiles")
	if err := os.MkdirAll(profiles, 0o755); err != nil {
		return err
	}
	resultsPath, err := filepath.Abs(filepath.Join(benchDir, "results.jsonl"))
	if err != nil {
		return err
	}
	parts := map[string]bool{}
	for _, p := range strings.Split(only, ",") {
		if p = strings.TrimSpace(p); p != "" && p != "none" {
			if _, ok := partWorkloads[p]; !ok {
				return fmt.Errorf("-only: unknown part %q (parts: %s, or none)", p, strings.Join(allParts, ", "))
			}
			parts[p] = true
		}
	}
	var measured []string // the parts this run measures, in run order
	for _, p := range allParts {
		if parts[p] {
			measured = append(measured, p)
		}
	}
	full := len(measured) == len(allParts)
	switch {
	case full:
		if err := os.Remove(resultsPath); err != nil && !os.IsNotExist(err) {
			return err
		}
	case len(measured) > 0:
		var drop []string
		for _, p := range measured {
			drop = append(drop, partWorkloads[p]...)
		}
		if err := results.Remove(resultsPath, drop...); err != nil {
			return fmt.Errorf("drop the results this run measures again: %w", err)
		}
	}
	started := time.Now()
	command := "cd test/bench && go run . -out ../../docs"
	if !full {
		command += " -only " + strings.Join(measured, ",")
	}
	command += fmt.Sprintf(" -runs %d", runs)
	if full || parts["async"] || parts["cluster"] {
		command += fmt.Sprintf(" -n %d", n)
	}
	if full || parts["pollers"] {
		command += fmt.Sprintf(" -messages %d", msgs)
	}
	if quick {
		command += " -quick"
	}
	commands := []string{"test/brokers/up.sh", command}

	if parts["async"] {
		progress("async workloads: throughput, latency, scale, fairness (%d runs each)", runs)
		err := async.Run(ctx, async.Config{
			Out: resultsPath, Profiles: profiles, Runs: runs, N: n, Quick: quick,
			Progress: progress, RedisAddr: "127.0.0.1:6379",
		})
		if err != nil {
			return fmt.Errorf("async workloads: %w", err)
		}
	}
	pollerArgs := []string{"test", "-run", "XXX", "-bench", "Pollers", "-benchtime", "1x", "-timeout", "180m", "./test/conformance/"}
	pollerCommand := fmt.Sprintf("FERRY_BENCH_N=%d FERRY_BENCH_RUNS=%d go %s   # run by the above", msgs, runs, strings.Join(pollerArgs, " "))
	if parts["pollers"] {
		absProfiles, _ := filepath.Abs(profiles)
		progress("pollers: %d messages per broker (RabbitMQ and RocketMQ %d), %d runs", msgs, msgs/5, runs)
		cmd := exec.CommandContext(ctx, "go", pollerArgs...)
		cmd.Dir = repo
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.Env = append(os.Environ(),
			"FERRY_BENCH_N="+strconv.Itoa(msgs), "FERRY_BENCH_RUNS="+strconv.Itoa(runs),
			"FERRY_BENCH_OUT="+resultsPath, "FERRY_BENCH_PROFILES="+absProfiles)
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("pollers benchmark: %w", err)
		}
	}

	if parts["cluster"] {
		progress("cluster: asynq and 1, 2, 3 Ferry nodes on one Redis (%d runs)", runs)
		err := async.RunCluster(ctx, async.Config{
			Out: resultsPath, Profiles: profiles, Runs: runs, N: n, Quick: quick,
			Progress: progress, RedisAddr: "127.0.0.1:6379",
		})
		if err != nil {
			return fmt.Errorf("cluster workload: %w", err)
		}
	}

	res, err := results.Load(resultsPath)
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	if parts["pollers"] {
		commands = append(commands, pollerCommand)
	}
	rec := runRecord{Started: started, Finished: time.Now(), Commands: commands}
	recPath := filepath.Join(benchDir, "run.json")
	switch {
	case len(measured) == 0:
		if rec, err = readRunRecord(recPath, res, commands); err != nil {
			return err
		}
	case full:
		rec.Machine = describeMachine()
		if err := rec.write(recPath); err != nil {
			return err
		}
	default:
		// Some parts: the record of the run that measured the rest stays,
		// with these parts noted beside it.
		if _, err := os.Stat(recPath); err == nil {
			prev, err := readRunRecord(recPath, res, nil)
			if err != nil {
				return err
			}
			prev.addPart(report.Part{
				Name: strings.Join(measured, ","), Started: rec.Started, Finished: rec.Finished,
				Commands: commands[1:],
			})
			rec = prev
		} else {
			rec.Machine = describeMachine()
		}
		if err := rec.write(recPath); err != nil {
			return err
		}
	}
	tops, err := filepath.Glob(filepath.Join(profiles, "*.top.txt"))
	if err != nil {
		return err
	}
	in := report.Input{
		Results: res, Commands: rec.Commands, Started: rec.Started, Finished: rec.Finished,
		Machine: rec.Machine, Profiles: map[string]string{}, Parts: rec.Parts,
	}
	for _, p := range tops {
		rel, _ := filepath.Rel(out, p)
		in.Profiles[strings.TrimSuffix(filepath.Base(p), ".top.txt")] = rel
	}
	if notes, err := os.ReadFile("notes.md"); err == nil {
		in.Notes = append(in.Notes, strings.Split(strings.TrimSpace(string(notes)), "\n\n")...)
	}
	if err := report.Write(out, in); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	progress("wrote %s in %s", filepath.Join(out, "benchmarks.md"), time.Since(started).Round(time.Second))
	return nil
}

// brokerVersion returns the first line of a version command's output, or
// "unknown".
func brokerVersion(name string, args ...string) string {
	b, err := exec.Command(name, args...).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
}

// runRecord is what a measuring run records beside its results, so that a
// report-only run (-only none) describes the run and the machine that
// measured the figures, not the re-rendering.
type runRecord struct {
	Started, Finished time.Time
	Commands          []string
	Machine           report.Machine
	// Parts are the parts measured again after that run, by later runs
	// of only some parts (-only), whose figures replaced that run's.
	Parts []report.Part `json:",omitempty"`
}

// addPart notes a later run of some parts, replacing an earlier note of
// the same parts.
func (r *runRecord) addPart(p report.Part) {
	r.Parts = slices.DeleteFunc(r.Parts, func(x report.Part) bool { return x.Name == p.Name })
	r.Parts = append(r.Parts, p)
}

func (r runRecord) write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// readRunRecord reads the record at path; without one (results from an
// older bench), the span comes from the results' times, the commands are
// the given ones and the machine is this one.
func readRunRecord(path string, res []results.Result, commands []string) (runRecord, error) {
	r := runRecord{Commands: commands}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		var rec runRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return r, fmt.Errorf("read %s: %w", path, err)
		}
		return rec, nil
	case !os.IsNotExist(err):
		return r, err
	}
	for _, x := range res {
		if r.Started.IsZero() || x.Time.Before(r.Started) {
			r.Started = x.Time
		}
		if x.Time.After(r.Finished) {
			r.Finished = x.Time
		}
	}
	r.Machine = describeMachine()
	return r, nil
}

// describeMachine describes this machine and the brokers' versions.
func describeMachine() report.Machine {
	return report.DescribeMachine(map[string]string{
		"Kafka": "3.9.1 (KRaft)", "RocketMQ": "4.9.7", "RabbitMQ": brokerVersion("rabbitmqctl", "version"),
		"Redis": brokerVersion("redis-server", "--version"),
	})
}
