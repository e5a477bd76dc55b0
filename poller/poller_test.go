package poller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/wire"
)

// memSource is an in-memory Source for the loop's own logic; the broker
// adapters are tested against real brokers (test/conformance).
type memSource struct {
	mu      sync.Mutex
	msgs    []*poller.Message
	next    int
	chunk   int
	acked   map[string]error
	settled chan string
}

func newMemSource(n, scopes, chunk int, mk func(i int, m *poller.Message)) *memSource {
	s := &memSource{chunk: chunk, acked: map[string]error{}, settled: make(chan string, n)}
	for i := range n {
		m := &poller.Message{
			ID: fmt.Sprintf("m%d", i), Scope: fmt.Sprintf("s%d", i%scopes),
			Payload: []byte(fmt.Sprintf(`{"i":%d}`, i)), Headers: map[string]string{}, Time: time.Now(),
		}
		if mk != nil {
			mk(i, m)
		}
		m.Ack = func(_ context.Context, err error) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if _, dup := s.acked[m.ID]; dup {
				return fmt.Errorf("%s settled twice", m.ID)
			}
			s.acked[m.ID] = err
			s.settled <- m.ID
			return nil
		}
		s.msgs = append(s.msgs, m)
	}
	return s
}

func (s *memSource) Connect(context.Context) error { return nil }
func (s *memSource) Close(context.Context) error   { return nil }

func (s *memSource) Read(ctx context.Context) ([]*poller.Message, error) {
	s.mu.Lock()
	if s.next < len(s.msgs) {
		end := min(s.next+s.chunk, len(s.msgs))
		out := s.msgs[s.next:end]
		s.next = end
		s.mu.Unlock()
		return out, nil
	}
	s.mu.Unlock()
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *memSource) read() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// waitSettled waits until n messages are settled.
func (s *memSource) waitSettled(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for range n {
		select {
		case <-s.settled:
		case <-timeout:
			t.Fatalf("only some of %d messages settled within 20s", n)
		}
	}
}

// calls records invocations.
type calls struct {
	mu      sync.Mutex
	batches [][]string
}

func (c *calls) add(inv *dispatcher.Invocation) []string {
	ids := []string{inv.ID}
	if inv.Batch != nil {
		ids = ids[:0]
		for _, e := range inv.Batch {
			ids = append(ids, e.ID)
		}
	}
	c.mu.Lock()
	c.batches = append(c.batches, ids)
	c.mu.Unlock()
	return ids
}

func (c *calls) all() [][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.batches)
}

type failSink struct {
	mu  sync.Mutex
	got []*wire.Outcome
}

func (f *failSink) Deliver(_ context.Context, o *wire.Outcome) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, o)
	return nil
}

func (f *failSink) codes() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for _, o := range f.got {
		out[o.ID] = o.Error.Code
	}
	return out
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type rig struct {
	src  poller.Source
	p    *poller.Poller
	sink *failSink
	stop func()
}

// start runs a Poller over src with backend b and the given options.
func start(t *testing.T, src poller.Source, b dispatcher.Backend, maxConc int, tune func(*poller.Config)) *rig {
	t.Helper()
	return startWith(t, src, b, maxConc, nil, tune)
}

// startWith is start with the dispatcher's config tuned too.
func startWith(t *testing.T, src poller.Source, b dispatcher.Backend, maxConc int, tuneD func(*dispatcher.Config), tune func(*poller.Config)) *rig {
	t.Helper()
	sink := &failSink{}
	retry := dispatcher.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, Multiplier: 2, MaxAge: time.Hour}
	fn := &dispatcher.Function{
		Lane: wire.Lane{Tenant: "t", Function: "f"}, Backend: b, Retry: retry, MaxConcurrency: maxConc,
		OnFailure: []dispatcher.Destination{{Name: "on_failure[0]", Kind: "test", Sink: sink, Retry: retry, Timeout: time.Second}},
	}
	dc := dispatcher.Config{Functions: []*dispatcher.Function{fn}, MaxHops: 16, Logger: quiet}
	if tuneD != nil {
		tuneD(&dc)
	}
	d, err := dispatcher.New(dc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := poller.Config{Name: "trig", Kind: "mem", Source: src, Dispatcher: d, Function: fn, Logger: quiet}
	if tune != nil {
		tune(&cfg)
	}
	p, err := poller.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	var once sync.Once
	r := &rig{src: src, p: p, sink: sink, stop: func() { once.Do(func() { cancel(); <-done }) }}
	t.Cleanup(r.stop)
	return r
}

func ok(c *calls) dispatcher.Backend {
	return dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		c.add(inv)
		return &dispatcher.Result{}, nil
	})
}

func TestOrderPerScopeWithConcurrencyOne(t *testing.T) {
	c := &calls{}
	src := newMemSource(300, 3, 7, nil)
	r := start(t, src, ok(c), 10, nil)
	src.waitSettled(t, 300)
	r.stop()
	last := map[string]int{}
	for _, b := range c.all() {
		var i int
		fmt.Sscanf(b[0], "m%d", &i)
		scope := fmt.Sprintf("s%d", i%3)
		if prev, seen := last[scope]; seen && i < prev {
			t.Fatalf("scope %s: m%d invoked after m%d", scope, i, prev)
		}
		last[scope] = i
	}
	for id, err := range src.acked {
		if err != nil {
			t.Fatalf("%s nacked: %v", id, err)
		}
	}
}

func TestOrderPerKeyWithConcurrency(t *testing.T) {
	c := &calls{}
	src := newMemSource(400, 2, 10, func(i int, m *poller.Message) { m.Key = fmt.Sprintf("k%d", i%5) })
	r := start(t, src, ok(c), 10, func(cfg *poller.Config) { cfg.Concurrency = 4 })
	src.waitSettled(t, 400)
	r.stop()
	last := map[string]int{}
	for _, b := range c.all() {
		var i int
		fmt.Sscanf(b[0], "m%d", &i)
		key := fmt.Sprintf("%d/%d", i%2, i%5)
		if prev, seen := last[key]; seen && i < prev {
			t.Fatalf("key %s: m%d invoked after m%d", key, i, prev)
		}
		last[key] = i
	}
}

func TestBatchesAndPartialFailure(t *testing.T) {
	c := &calls{}
	tries := map[string]int{}
	var mu sync.Mutex
	b := dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		ids := c.add(inv)
		mu.Lock()
		defer mu.Unlock()
		var failed []string
		for _, id := range ids {
			tries[id]++
			if (id == "m3" || id == "m17") && tries[id] < 2 {
				failed = append(failed, fmt.Sprintf(`{"itemIdentifier":%q}`, id))
			}
		}
		return &dispatcher.Result{Output: []byte(`{"batchItemFailures":[` + strings.Join(failed, ",") + `]}`)}, nil
	})
	src := newMemSource(45, 1, 45, nil)
	r := start(t, src, b, 10, func(cfg *poller.Config) { cfg.BatchSize, cfg.BatchWindow = 10, 100*time.Millisecond })
	src.waitSettled(t, 45)
	r.stop()
	for _, batch := range c.all() {
		if len(batch) > 10 {
			t.Fatalf("batch of %d > 10", len(batch))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for id, n := range tries {
		want := 1
		if id == "m3" || id == "m17" {
			want = 2
		}
		if n != want {
			t.Errorf("%s invoked %d times, want %d (only failed items are retried)", id, n, want)
		}
	}
	if len(r.sink.codes()) != 0 {
		t.Fatalf("on_failure got %v, want nothing", r.sink.codes())
	}
}

func TestPoisonMessagesGoToOnFailureAndTheScopeMovesOn(t *testing.T) {
	c := &calls{}
	b := dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		c.add(inv)
		switch inv.ID {
		case "m5":
			return nil, dispatcher.Permanent("http_400", errors.New("bad"))
		case "m9":
			return nil, dispatcher.Retryable("http_503", errors.New("down"), 0)
		}
		return &dispatcher.Result{}, nil
	})
	src := newMemSource(20, 1, 20, func(i int, m *poller.Message) {
		if i == 12 {
			m.Headers[wire.HeaderHops] = "16"
		}
	})
	r := start(t, src, b, 10, nil)
	src.waitSettled(t, 20)
	r.stop()
	want := map[string]string{"m5": wire.CodeRejected, "m9": wire.CodeRetriesExhausted, "m12": wire.CodeLoopDetected}
	if got := r.sink.codes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("on_failure got %v, want %v", got, want)
	}
	n9 := 0
	for _, batch := range c.all() {
		if batch[0] == "m12" {
			t.Fatal("m12 reached max_hops but was invoked")
		}
		if batch[0] == "m9" {
			n9++
		}
	}
	if n9 != 3 {
		t.Fatalf("m9 invoked %d times, want max_attempts 3", n9)
	}
}

func TestBisectFindsTheBadMessagesWithoutSpendingRetries(t *testing.T) {
	tries := map[string]int{}
	var mu sync.Mutex
	b := dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range inv.Batch {
			tries[e.ID]++
			if e.ID == "m6" {
				return nil, dispatcher.Retryable("http_500", errors.New("boom"), 0)
			}
		}
		return &dispatcher.Result{}, nil
	})
	src := newMemSource(8, 1, 8, nil)
	r := start(t, src, b, 10, func(cfg *poller.Config) {
		cfg.BatchSize, cfg.BatchWindow, cfg.BisectOnError = 8, 200*time.Millisecond, true
	})
	src.waitSettled(t, 8)
	r.stop()
	if got := r.sink.codes(); len(got) != 1 || got["m6"] != wire.CodeRetriesExhausted {
		t.Fatalf("on_failure got %v, want only m6", got)
	}
	mu.Lock()
	defer mu.Unlock()
	// m6 is in the batch of 8, its half of 4, its quarter of 2, then alone
	// for its 3 attempts: bisecting spent none of them.
	if tries["m6"] != 6 {
		t.Errorf("m6 invoked %d times, want 3 (bisect) + 3 attempts", tries["m6"])
	}
	for _, id := range []string{"m0", "m1", "m2", "m3"} {
		if tries[id] != 2 {
			t.Errorf("%s invoked %d times, want 2 (the batch, then its good half)", id, tries[id])
		}
	}
}

func TestFilterCommitsUnmatchedWithoutInvoking(t *testing.T) {
	c := &calls{}
	src := newMemSource(10, 1, 10, func(i int, m *poller.Message) {
		if i%2 == 0 {
			m.Payload = []byte(`{"status":"paid"}`)
		}
	})
	reg := prometheus.NewRegistry()
	r := start(t, src, ok(c), 10, func(cfg *poller.Config) {
		cfg.Filter = &poller.Filter{JSON: map[string][]string{"status": {"paid", "shipped"}}}
		cfg.Metrics = poller.NewMetrics(reg)
	})
	src.waitSettled(t, 10)
	r.stop()
	if n := len(c.all()); n != 5 {
		t.Fatalf("invoked %d messages, want the 5 that match", n)
	}
	want := `
# HELP ferry_trigger_messages_total Trigger messages by event: consumed, filtered, invoked, succeeded, failed, redelivered.
# TYPE ferry_trigger_messages_total counter
ferry_trigger_messages_total{event="consumed",trigger="trig"} 10
ferry_trigger_messages_total{event="failed",trigger="trig"} 0
ferry_trigger_messages_total{event="filtered",trigger="trig"} 5
ferry_trigger_messages_total{event="invoked",trigger="trig"} 5
ferry_trigger_messages_total{event="redelivered",trigger="trig"} 0
ferry_trigger_messages_total{event="succeeded",trigger="trig"} 5
# HELP ferry_trigger_in_flight Messages read and not yet settled, per trigger.
# TYPE ferry_trigger_in_flight gauge
ferry_trigger_in_flight{trigger="trig"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ferry_trigger_messages_total", "ferry_trigger_in_flight"); err != nil {
		t.Fatal(err)
	}
}

func TestBackPressureStopsReading(t *testing.T) {
	release := make(chan struct{})
	b := dispatcher.BackendFunc(func(ctx context.Context, _ *dispatcher.Invocation) (*dispatcher.Result, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return &dispatcher.Result{}, nil
	})
	src := newMemSource(10000, 1, 5, nil)
	r := start(t, src, b, 1, func(cfg *poller.Config) { cfg.Concurrency, cfg.BatchSize = 2, 1 })
	// Two workers, one function slot: one invocation runs, the rest wait.
	// The reader may hold what fits in the channels (2 workers × 1 + shared
	// 1) plus the workers' current messages and one read chunk.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && src.read() < 5 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let a runaway reader show itself
	if n := src.read(); n > 20 {
		t.Fatalf("read %d messages while the function was saturated; want the reader stopped (<= 20)", n)
	}
	close(release)
	src.waitSettled(t, 10000)
	r.stop()
}

func TestShutdownFinishesWhatWasReadAndStopsReading(t *testing.T) {
	started := make(chan struct{})
	finish := make(chan struct{})
	var once sync.Once
	b := dispatcher.BackendFunc(func(ctx context.Context, _ *dispatcher.Invocation) (*dispatcher.Result, error) {
		once.Do(func() { close(started) })
		<-finish
		return &dispatcher.Result{}, nil
	})
	src := newMemSource(1000, 1, 5, nil)
	r := start(t, src, b, 1, nil)
	<-started
	stopped := make(chan struct{})
	go func() { r.stop(); close(stopped) }()
	close(finish) // the invocations complete during the drain
	<-stopped
	src.mu.Lock()
	defer src.mu.Unlock()
	for id, err := range src.acked {
		if err != nil {
			t.Fatalf("%s was handed back (%v); a graceful stop must finish what it read", id, err)
		}
	}
	if len(src.acked) != src.next || src.next == len(src.msgs) {
		t.Fatalf("settled %d of %d read (of %d); want every read message settled and reading stopped", len(src.acked), src.next, len(src.msgs))
	}
}

// flakySource fails its first connects, and loses the connection once
// after the first read.
type flakySource struct {
	*memSource
	mu          sync.Mutex
	connects    int
	failConnect int
	dropped     bool
}

func (f *flakySource) Connect(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connects++
	if f.connects <= f.failConnect {
		return errors.New("connection refused")
	}
	return nil
}

func (f *flakySource) Read(ctx context.Context) ([]*poller.Message, error) {
	f.mu.Lock()
	drop := !f.dropped && f.memSource.read() > 0
	f.dropped = f.dropped || drop
	f.mu.Unlock()
	if drop {
		return nil, fmt.Errorf("socket closed: %w", poller.ErrNotConnected)
	}
	return f.memSource.Read(ctx)
}

func TestReconnectsWithBackoff(t *testing.T) {
	c := &calls{}
	mem := newMemSource(20, 1, 5, nil)
	src := &flakySource{memSource: mem, failConnect: 2}
	sink := &failSink{}
	fn := &dispatcher.Function{Lane: wire.Lane{Tenant: "t", Function: "f"}, Backend: ok(c),
		Retry:     dispatcher.RetryPolicy{MaxAttempts: 1, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond, Multiplier: 1},
		OnFailure: []dispatcher.Destination{{Name: "on_failure[0]", Kind: "test", Sink: sink, Timeout: time.Second}}}
	d, err := dispatcher.New(dispatcher.Config{Functions: []*dispatcher.Function{fn}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p, err := poller.New(poller.Config{Name: "trig", Source: src, Dispatcher: d, Function: fn, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	mem.waitSettled(t, 20)
	cancel()
	<-done
	src.mu.Lock()
	defer src.mu.Unlock()
	// Two refused connects, the successful one, and one after the drop.
	if src.connects != 4 || !src.dropped || len(c.all()) != 20 {
		t.Fatalf("connects %d, dropped %v, invoked %d; want 4 connects, the drop, all 20 invoked", src.connects, src.dropped, len(c.all()))
	}
}

// TestLocalResourceErrorsSpendNoAttempt: a message whose invocation fails
// on Ferry's own resources (EMFILE at the socket) more often than
// max_attempts is not failed: it is tried again without spending an
// attempt, and succeeds once the descriptors are back.
func TestLocalResourceErrorsSpendNoAttempt(t *testing.T) {
	c := &calls{}
	var n atomic.Int32
	b := dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		c.add(inv)
		if inv.ID == "m1" && n.Add(1) <= 2 { // max_attempts is 1
			return nil, dispatcher.Retryable("connection", &os.SyscallError{Syscall: "socket", Err: syscall.EMFILE}, 0)
		}
		return &dispatcher.Result{}, nil
	})
	src := newMemSource(3, 1, 3, nil)
	r := start(t, src, b, 10, func(cfg *poller.Config) {
		cfg.Retry = &dispatcher.RetryPolicy{MaxAttempts: 1, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond, Multiplier: 2, MaxAge: time.Hour}
	})
	src.waitSettled(t, 3)
	r.stop()
	if got := r.sink.codes(); len(got) != 0 {
		t.Fatalf("on_failure got %v, want nothing: Ferry's own resources are not the message's failure", got)
	}
	for id, err := range src.acked {
		if err != nil {
			t.Fatalf("%s nacked: %v", id, err)
		}
	}
	if n.Load() != 3 {
		t.Fatalf("m1 invoked %d times, want 3 (2 failed on EMFILE, not spent)", n.Load())
	}
}
