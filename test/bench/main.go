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
//     consuming with no invocation.
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
	n := flag.Int("n", 100000, "tasks of the async throughput workload")
	msgs := flag.Int("messages", 1000000, "messages per broker for the pollers (RabbitMQ and RocketMQ: a fifth)")
	quick := flag.Bool("quick", false, "smoke run with tiny sizes (figures not meaningful)")
	only := flag.String("only", "async,pollers", "parts to run: async, pollers (report only: none)")
	repo := flag.String("repo", "../..", "the Ferry repository root (for the pollers benchmark)")
	flag.Parse()
	if err := run(*out, *repo, *only, *runs, *n, *msgs, *quick); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
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
		parts[strings.TrimSpace(p)] = true
	}
	if parts["async"] || parts["pollers"] {
		if err := os.Remove(resultsPath); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	started := time.Now()
	commands := []string{
		"test/brokers/up.sh",
		fmt.Sprintf("cd test/bench && go run . -out ../../docs -runs %d -n %d -messages %d%s", runs, n, msgs, map[bool]string{true: " -quick"}[quick]),
	}

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

	res, err := results.Load(resultsPath)
	if err != nil {
		return fmt.Errorf("read results: %w", err)
	}
	for _, r := range res {
		if r.Workload == results.Pollers {
			commands = append(commands, pollerCommand)
			break
		}
	}
	rec := runRecord{Started: started, Finished: time.Now(), Commands: commands}
	recPath := filepath.Join(benchDir, "run.json")
	if parts["async"] || parts["pollers"] {
		rec.Machine = describeMachine()
		if err := rec.write(recPath); err != nil {
			return err
		}
	} else if rec, err = readRunRecord(recPath, res, commands); err != nil {
		return err
	}
	tops, err := filepath.Glob(filepath.Join(profiles, "*.top.txt"))
	if err != nil {
		return err
	}
	in := report.Input{
		Results: res, Commands: rec.Commands, Started: rec.Started, Finished: rec.Finished,
		Machine: rec.Machine, Profiles: map[string]string{},
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
