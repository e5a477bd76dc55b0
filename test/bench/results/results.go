// Package results is the record every `make bench` workload appends to one
// JSON-lines file, and the report reads back: one Result per system, run
// and parameter set. test/conformance's poller benchmark writes the same
// shape.
package results

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
)

// Workload names.
const (
	Throughput = "throughput" // async tasks end to end, with ceilings
	Latency    = "latency"    // submit → backend start at 50% of the peak rate
	Scale      = "scale"      // dispatch rate and latency against the backlog
	Fairness   = "fairness"   // 1,000 tenants, one with half of the tasks
	Pollers    = "pollers"    // triggers against raw consumers
	Cluster    = "cluster"    // 1–3 Ferry nodes on one Redis against asynq
)

// Result is one measured run of one system in one workload.
type Result struct {
	Workload string `json:"workload"`
	// System names what ran, e.g. "ferry (go backend)", "asynq (default)",
	// "wrk → trivial Go server", "kafka-go raw consumer".
	System string `json:"system"`
	// Params distinguish runs of one system, e.g. {"broker": "kafka",
	// "batch": "100"} or {"backlog": "1000000"}.
	Params map[string]string `json:"params,omitempty"`
	// Run is 1-based; runs of different systems are interleaved.
	Run int `json:"run"`
	// Metrics are the figures: tasks_per_s, submit_per_s, req_per_s,
	// msgs_per_s, s_to_commit, p50_ms, p99_ms, p999_ms, small_p99_ms,
	// jain, rss_mb, cpu_ms_per_1k_<process> (ferry, redis, asynq, broker).
	Metrics map[string]float64 `json:"metrics"`
	Time    time.Time          `json:"time"`
}

var mu sync.Mutex

// Append adds r to the JSON-lines file at path (created if missing).
func Append(path string, r Result) error {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Load reads every Result of the file at path.
func Load(path string) ([]Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Result
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var r Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// Remove rewrites the file at path without the results of the given
// workloads (a missing file is no error): a run that measures some parts
// again replaces their figures and keeps the others'.
func Remove(path string, workloads ...string) error {
	rs, err := Load(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	drop := map[string]bool{}
	for _, w := range workloads {
		drop[w] = true
	}
	var b []byte
	for _, r := range rs {
		if drop[r.Workload] {
			continue
		}
		line, err := json.Marshal(r)
		if err != nil {
			return err
		}
		b = append(append(b, line...), '\n')
	}
	mu.Lock()
	defer mu.Unlock()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
