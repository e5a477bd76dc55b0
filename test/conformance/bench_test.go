package conformance_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry"
	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/poller/pollertest/sources"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/kafkatest"
	"github.com/ferrydev/ferry/test/brokers/rabbitmqtest"
	"github.com/ferrydev/ferry/test/brokers/redisstreamtest"
	"github.com/ferrydev/ferry/test/conformance"
	"github.com/ferrydev/ferry/test/ferrytest"
)

// pollerCase is one broker of BenchmarkPollers.
type pollerCase struct {
	broker conformance.Broker
	// n is the number of messages per variant-run.
	n   int
	raw rawConsumer
	// destructive: consuming empties the queue (RabbitMQ), so every
	// variant-run gets a queue of its own, produced right before it.
	destructive bool
	// source is the trigger's `source:` for a topic and group: the
	// broker's defaults, as a user's config would have them.
	source func(tp conformance.Topic, group string) string
	// brokerAddr is where the broker process listens (its CPU time is
	// measured); brokerPID is that process, 0 when not found.
	brokerAddr string
	brokerPID  int
}

// pollerVariant is one system measured on each broker, in this order in
// every run.
type pollerVariant struct {
	slug  string // sub-benchmark name and consumer-group suffix
	batch int    // the trigger's batch size; 0 for the raw consumer
}

var pollerVariants = []pollerVariant{{"ferry-batch1", 1}, {"ferry-batch100", 100}, {"raw", 0}}

// BenchmarkPollers is the poller workload of `make bench`: per broker, a
// topic with 4 partitions / queues (RabbitMQ: one queue) holding N small
// messages, drained by
//
//   - Ferry's trigger (in-process, as `ferry serve` runs it) into a no-op
//     in-process Go function: trigger concurrency 8, function
//     max_concurrency 16, batch size 1 and 100 (window 20 ms), the
//     source's other options at their defaults;
//   - the raw consumer: the same client library consuming and committing
//     with no invocation (raw_test.go), the ceiling;
//
// interleaved per run (run 1: ferry batch=1, ferry batch=100, raw; run 2:
// ...), each variant-run with a consumer group of its own on a topic
// produced once (RabbitMQ: a queue produced before each variant-run).
// Figures: msgs_per_s = N / seconds until the broker shows every message
// committed / acked (Topic.Backlog is 0), s_to_commit; the rate at which
// every message reached the function (invoked_per_s) or the raw consumer
// (received_per_s); the CPU time per 1,000 messages until then (not
// during the wait for the commit, mostly the benchmark's backlog
// polling) of this process (cpu_ms_per_1k_ferry or cpu_ms_per_1k_raw:
// the consumer plus a 2 ms counter poll) and of the broker's
// (cpu_ms_per_1k_broker, from /proc/<pid>/stat of the process listening
// on the broker's port; whatever else uses that broker meanwhile counts
// too). The CPU figures are the steadier ones on a shared machine.
// RocketMQ's client persists offsets to the broker 10 s after it starts
// and every 5 s after that, which quantises its commit figures: compare
// invoked_per_s with received_per_s there.
//
//	FERRY_BENCH_N=1000000 FERRY_BENCH_RUNS=3 FERRY_BENCH_OUT=results.jsonl \
//	FERRY_BENCH_PROFILES=profiles/ \
//	  go test -run XXX -bench Pollers -benchtime 1x -timeout 120m ./test/conformance/
//
// FERRY_BENCH_N is the messages per broker (default 20000; RabbitMQ and
// RocketMQ get a fifth), FERRY_BENCH_RUNS the runs (default 1). With
// FERRY_BENCH_OUT, every variant-run appends one JSON line
// (test/bench/results.Result);
// with FERRY_BENCH_PROFILES, run 1 of each Ferry variant writes a CPU
// profile of the benchmark process (Ferry runs in it) until the last
// invocation, and its top 30 frames, to pollers-<broker>-batch<k>.pprof
// and .top.txt there. Progress goes to stderr. No -race:
// rocketmq-client-go races internally. Each sub-benchmark runs once
// whatever b.N is.
func BenchmarkPollers(b *testing.B) {
	n := envInt(b, "FERRY_BENCH_N", 20000)
	runs := envInt(b, "FERRY_BENCH_RUNS", 1)
	kb, rb, redisB := kafkatest.New(), rabbitmqtest.New(), redisstreamtest.New()
	cases := []pollerCase{
		{broker: kb, n: n, raw: rawKafka(kb.Addr), brokerAddr: kb.Addr},
		// A fifth, as RocketMQ: a queue is produced before every
		// variant-run, and RabbitMQ 3.10 both publishes (persistent,
		// confirmed) and delivers a 1M-message classic queue at under 10k
		// msgs/s here, which made its part alone take about 40 minutes.
		{broker: rb, n: max(n/5, 1), raw: rawRabbitMQ(rb.URL), destructive: true, brokerAddr: hostPort(rb.URL)},
		{broker: redisB, n: n, raw: rawRedis(redisB.URL()), brokerAddr: hostPort(redisB.URL()),
			source: func(tp conformance.Topic, group string) string {
				// Not SourceYAML: its short claim_idle is for the suite.
				return fmt.Sprintf(`{ redis: { url: %q, stream: %s, group: %s } }`, redisB.URL(), tp.Name(), group)
			}},
		{broker: sources.RocketMQBroker(), n: max(n/5, 1), raw: rawRocketMQ(), brokerAddr: brokers.RocketMQBrokerAddr()},
	}
	for _, c := range cases {
		if c.source == nil {
			c.source = conformance.Topic.SourceYAML
		}
		b.Run(c.broker.Name(), func(b *testing.B) { benchBroker(b, c, runs) })
	}
}

// benchBroker runs every variant runs times on one broker.
func benchBroker(b *testing.B, c pollerCase, runs int) {
	name := c.broker.Name()
	began := time.Now()
	pid, err := listenerPID(c.brokerAddr)
	if err != nil {
		progress("pollers %s: not measuring the broker's CPU: %v", name, err)
	}
	c.brokerPID = pid
	var shared conformance.Topic
	if !c.destructive {
		shared = produceTopic(b, c)
	}
	for run := 1; run <= runs; run++ {
		for _, v := range pollerVariants {
			b.Run(fmt.Sprintf("%s-run%d", v.slug, run), func(b *testing.B) {
				tp := shared
				if c.destructive {
					tp = produceTopic(b, c) // deleted when this sub-benchmark ends
				}
				group := fmt.Sprintf("%s-%s-r%d", tp.Name(), v.slug, run)
				label := fmt.Sprintf("pollers %s run %d/%d: ", name, run, runs)
				var m measured
				if v.batch > 0 {
					label += fmt.Sprintf("ferry batch=%d", v.batch)
					m = runFerry(b, c, tp, group, v.batch, profilePath(run, name, v.batch), label)
				} else {
					label += "raw " + c.raw.library
					m = runRaw(b, c, tp, group, label)
				}
				report(b, c, v, run, m)
			})
		}
	}
	progress("pollers %s: done in %s", name, time.Since(began).Round(time.Second))
}

// produceTopic creates a topic with 4 scopes (deleted when b ends) and
// produces c.n messages into it: 64 keys, payload {"seq":i}.
func produceTopic(b *testing.B, c pollerCase) conformance.Topic {
	tp := c.broker.NewTopic(b, 4)
	bulk, ok := tp.(conformance.BulkTopic)
	if !ok {
		b.Fatalf("%s topics cannot ProduceN", c.broker.Name())
	}
	start := time.Now()
	bulk.ProduceN(b, c.n, func(i int) conformance.Msg {
		return conformance.Msg{Key: "k" + strconv.Itoa(i%64), Payload: fmt.Appendf(nil, `{"seq":%d}`, i)}
	})
	d := time.Since(start)
	progress("pollers %s: produced %d in %s (%s msgs/s)", c.broker.Name(), c.n, d.Round(time.Millisecond/10), rate(c.n, d))
	return tp
}

// measured is one variant-run's timing, from the consumer's start.
type measured struct {
	n         int
	received  time.Duration // every message reached the function / the raw consumer
	committed time.Duration // the broker shows every message committed / acked
	// CPU time until received of this process (Ferry or the raw
	// consumer) and of the broker; -1 when not measured.
	cpuSelf, cpuBroker time.Duration
}

// runFerry runs a Ferry server with one trigger on tp as group and a
// no-op Go function until every message was invoked and committed. With
// a profile path, the benchmark process's CPU is profiled meanwhile.
func runFerry(b *testing.B, c pollerCase, tp conformance.Topic, group string, batch int, profile, label string) measured {
	yaml := fmt.Sprintf(`server: { listen: %q }
store: { embedded: { path: %q } }
tenants: [ { name: t, api_keys: [bench-key-1], max_concurrency: 64 } ]
functions: [ { name: f, tenant: t, max_concurrency: 16, backend: { go: {} } } ]
triggers:
  - { name: bench, function: f, source: %s, concurrency: 8, batch: { size: %d, window: 20ms } }
`, ferrytest.FreeAddr(b), b.TempDir(), c.source(tp, group), batch)
	cfg, err := config.Parse("bench.yaml", []byte(yaml), nil)
	if err != nil {
		b.Fatal(err)
	}
	var seen atomic.Int64
	noop := dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		seen.Add(int64(max(len(inv.Batch), 1)))
		return &dispatcher.Result{}, nil
	})
	srv, err := ferry.New(cfg, ferry.WithFunction("t", "f", noop),
		ferry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		b.Fatal(err)
	}
	// The profile covers the consumption up to the last invocation, not
	// the wait for the commit (mostly the benchmark's backlog polling).
	stopProfile := startProfile(b, profile)
	ctx, cancel := context.WithCancel(context.Background())
	w := newWaiter(c, tp, group, &seen, label, stopProfile)
	b.ResetTimer()
	go func() { w.done <- srv.Run(ctx) }()
	m := w.wait(b)
	b.StopTimer()
	cancel()
	if err := <-w.done; err != nil {
		b.Logf("ferry: %v", err)
	}
	return m
}

// runRaw runs c's raw consumer on tp as group until every message was
// received and committed.
func runRaw(b *testing.B, c pollerCase, tp conformance.Topic, group, label string) measured {
	var got atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	w := newWaiter(c, tp, group, &got, label, func() {})
	b.ResetTimer()
	go func() { w.done <- c.raw.consume(ctx, b, tp, group, &got) }()
	m := w.wait(b)
	b.StopTimer()
	cancel()
	if err := <-w.done; err != nil {
		b.Logf("raw %s: %v", c.raw.library, err)
	}
	return m
}

// waiter follows one variant-run's consumer from its start.
type waiter struct {
	c        pollerCase
	tp       conformance.Topic
	group    string
	count    *atomic.Int64 // messages invoked / received so far
	done     chan error    // the consumer's end, reported by its goroutine
	label    string
	received func() // called once count reaches c.n
	cpu      *cpuMeter
	start    time.Time
}

// newWaiter starts the clock and the CPU meter of a variant-run.
func newWaiter(c pollerCase, tp conformance.Topic, group string, count *atomic.Int64, label string, received func()) *waiter {
	return &waiter{c: c, tp: tp, group: group, count: count, done: make(chan error, 1), label: label,
		received: received, cpu: startCPU(c.brokerPID), start: time.Now()}
}

// wait waits until count reaches c.n, calls received, and then waits
// until tp's backlog for group is 0 (polled only then, every 20 ms: it is
// costly on some brokers, RabbitMQ's spawns rabbitmqctl, ~0.5 s), failing
// b when the consumer ends first or the time is up.
func (w *waiter) wait(b *testing.B) measured {
	n := w.c.n
	deadline := w.start.Add(2*time.Minute + time.Duration(n)*time.Millisecond)
	check := func(what string) {
		select {
		case err := <-w.done:
			b.Fatalf("%s: the consumer stopped before %s: %v", w.label, what, err)
		default:
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: timed out waiting for %s (%d of %d received)", w.label, what, w.count.Load(), n)
		}
	}
	for w.count.Load() < int64(n) {
		check("every message was received")
		time.Sleep(2 * time.Millisecond)
	}
	m := measured{n: n, received: time.Since(w.start)}
	m.cpuSelf, m.cpuBroker = w.cpu.read()
	w.received()
	for w.tp.Backlog(b, w.group) > 0 {
		check("the backlog was committed")
		time.Sleep(20 * time.Millisecond)
	}
	m.committed = time.Since(w.start)
	progress("%s: received in %s (%s/s), committed in %s: %s msgs/s; CPU ms per 1k: %s here, %s broker", w.label,
		m.received.Round(time.Millisecond), rate(n, m.received), m.committed.Round(time.Millisecond), rate(n, m.committed),
		perK(m.cpuSelf, n), perK(m.cpuBroker, n))
	return m
}

// benchResult is test/bench/results.Result (another module), the line
// every variant-run appends to $FERRY_BENCH_OUT.
type benchResult struct {
	Workload string             `json:"workload"`
	System   string             `json:"system"`
	Params   map[string]string  `json:"params,omitempty"`
	Run      int                `json:"run"`
	Metrics  map[string]float64 `json:"metrics"`
	Time     time.Time          `json:"time"`
}

// report records m as benchmark metrics and, with $FERRY_BENCH_OUT, as a
// JSON line.
func report(b *testing.B, c pollerCase, v pollerVariant, run int, m measured) {
	perS := func(d time.Duration) float64 { return float64(m.n) / d.Seconds() }
	r := benchResult{
		Workload: "pollers",
		System:   "ferry trigger",
		Params:   map[string]string{"broker": c.broker.Name(), "batch": strconv.Itoa(v.batch), "messages": strconv.Itoa(m.n)},
		Run:      run,
		Metrics:  map[string]float64{"msgs_per_s": perS(m.committed), "s_to_commit": m.committed.Seconds()},
		Time:     time.Now().UTC(),
	}
	b.ReportMetric(perS(m.committed), "msgs/s")
	b.ReportMetric(m.committed.Seconds(), "s-to-commit")
	self := "ferry"
	if v.batch > 0 {
		r.Metrics["invoked_per_s"] = perS(m.received)
		b.ReportMetric(perS(m.received), "invoked/s")
	} else {
		r.System, r.Params["batch"], self = "raw consumer ("+c.raw.library+")", "-", "raw"
		r.Metrics["received_per_s"] = perS(m.received)
		b.ReportMetric(perS(m.received), "received/s")
	}
	for proc, d := range map[string]time.Duration{self: m.cpuSelf, "broker": m.cpuBroker} {
		if d >= 0 {
			r.Metrics["cpu_ms_per_1k_"+proc] = float64(d.Milliseconds()) * 1000 / float64(m.n)
		}
	}
	b.ReportMetric(0, "ns/op")
	path := os.Getenv("FERRY_BENCH_OUT")
	if path == "" {
		return
	}
	line, err := json.Marshal(r)
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err == nil {
		_, err = f.Write(append(line, '\n'))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		b.Fatalf("FERRY_BENCH_OUT: %v", err)
	}
}

// envInt is the positive integer in env var name, or def when unset.
func envInt(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		b.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}

// progress prints one line to stderr.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// perK is CPU time d per 1,000 of n messages in ms, "?" when unmeasured.
func perK(d time.Duration, n int) string {
	if d < 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f", float64(d.Milliseconds())*1000/float64(n))
}

// hostPort is the host:port of a URL such as amqp://u:p@127.0.0.1:5672/.
func hostPort(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// rate is n/d per second, short: "152k".
func rate(n int, d time.Duration) string {
	r := float64(n) / d.Seconds()
	if r >= 10000 {
		return fmt.Sprintf("%.0fk", r/1000)
	}
	return fmt.Sprintf("%.0f", r)
}
