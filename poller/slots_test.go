package poller_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/embedded"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/wire"
)

// Both entry points of one function, a task runner and a trigger, share
// the function's max_concurrency and hold a slot with the same meaning
// (dispatcher.Slot): from before the attempt until its result is recorded,
// and never during outcome deliveries.

// chanSource is a Source that hands over the messages sent on in.
type chanSource struct {
	in      chan *poller.Message
	settled chan string
}

func newChanSource() *chanSource {
	return &chanSource{in: make(chan *poller.Message, 1000), settled: make(chan string, 1000)}
}

func (s *chanSource) Connect(context.Context) error { return nil }
func (s *chanSource) Close(context.Context) error   { return nil }

func (s *chanSource) Read(ctx context.Context) ([]*poller.Message, error) {
	select {
	case m := <-s.in:
		return []*poller.Message{m}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *chanSource) send(id string) {
	m := &poller.Message{ID: id, Scope: "s", Payload: []byte(`{}`), Headers: map[string]string{}, Time: time.Now()}
	m.Ack = func(context.Context, error) error { s.settled <- id; return nil }
	s.in <- m
}

// gatedQueue holds Complete until released while hold is set.
type gatedQueue struct {
	*embedded.Queue
	hold    atomic.Bool
	entered chan string
	release chan struct{}
}

func (q *gatedQueue) Complete(ctx context.Context, id string, token uint64, c async.Completion) (*async.Task, error) {
	if q.hold.Load() {
		q.entered <- id
		<-q.release
	}
	return q.Queue.Complete(ctx, id, token, c)
}

// gatedSink records every outcome and holds deliveries while hold is set.
type gatedSink struct {
	hold    atomic.Bool
	entered chan string
	release chan struct{}
}

func (s *gatedSink) Deliver(ctx context.Context, o *wire.Outcome) error {
	s.entered <- o.ID
	if s.hold.Load() {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// meter is a backend that counts invocations in flight by entry point.
type meter struct {
	mu                sync.Mutex
	running, peak     int
	runTasks, runMsgs int  // in flight now, by entry point
	tasks, msgs       int  // invoked in all
	mixed             bool // a task and a message were in flight together
	started           chan string
	serviceTime       time.Duration
}

func (m *meter) Invoke(ctx context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
	task := inv.Type == dispatcher.TypeTask
	m.mu.Lock()
	m.running++
	m.peak = max(m.peak, m.running)
	if task {
		m.runTasks++
		m.tasks++
	} else {
		m.runMsgs++
		m.msgs++
	}
	m.mixed = m.mixed || (m.runTasks > 0 && m.runMsgs > 0)
	m.mu.Unlock()
	if m.started != nil {
		m.started <- inv.ID
	}
	time.Sleep(m.serviceTime) // the simulated service time of the function
	m.mu.Lock()
	m.running--
	if task {
		m.runTasks--
	} else {
		m.runMsgs--
	}
	m.mu.Unlock()
	return &dispatcher.Result{Output: []byte(`{}`)}, nil
}

// both runs a task runner (on a real embedded queue, wrapped as q) and a
// trigger on src, for one function with backend b.
type both struct {
	q    *gatedQueue
	stop func()
}

func runBoth(t *testing.T, b dispatcher.Backend, maxConc int, src poller.Source, onSuccess *gatedSink) *both {
	t.Helper()
	eq, err := embedded.Open(t.TempDir(), embedded.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	q := &gatedQueue{Queue: eq, entered: make(chan string, 10), release: make(chan struct{})}
	retry := dispatcher.RetryPolicy{MaxAttempts: 1, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond, Multiplier: 2, MaxAge: time.Hour}
	fn := &dispatcher.Function{Lane: wire.Lane{Tenant: "t", Function: "f"}, Backend: b, Retry: retry, MaxConcurrency: maxConc}
	if onSuccess != nil {
		fn.OnSuccess = []dispatcher.Destination{{Name: "on_success[0]", Kind: "test", Sink: onSuccess, Retry: retry, Timeout: time.Minute}}
	}
	d, err := dispatcher.New(dispatcher.Config{Functions: []*dispatcher.Function{fn}, MaxHops: 16, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p, err := poller.New(poller.Config{Name: "trig", Kind: "mem", Source: src, Dispatcher: d, Function: fn, Concurrency: 4, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ob := dispatcher.NewOutbox(d, q)
	r := dispatcher.NewTaskRunner(d, q, ob, dispatcher.TaskRunnerConfig{Workers: 16})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = eq.Run(ctx) })
	wg.Go(func() { _ = ob.Run(ctx, 4) })
	wg.Go(func() { _ = r.Run(ctx) })
	wg.Go(func() { _ = p.Run(ctx) })
	var once sync.Once
	bt := &both{q: q, stop: func() { once.Do(func() { cancel(); wg.Wait() }) }}
	t.Cleanup(func() { bt.stop(); _ = eq.Close() })
	return bt
}

var taskSeq atomic.Int64

func (b *both) submit(t *testing.T) string {
	t.Helper()
	now := time.Now()
	id := fmt.Sprintf("task-%d", taskSeq.Add(1))
	if _, _, err := b.q.Enqueue(context.Background(), &async.Task{
		ID: id, Tenant: "t", Function: "f", Payload: []byte(`{}`), CreatedAt: now, UpdatedAt: now, ReadyAt: now,
	}, 0); err != nil {
		t.Fatal(err)
	}
	return id
}

func (b *both) waitSucceeded(t *testing.T, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got, err := b.q.Get(context.Background(), "t", id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == async.StatusSucceeded {
			return
		}
		time.Sleep(2 * time.Millisecond) // poll interval
	}
	t.Fatalf("task %s did not succeed within 20s", id)
}

func TestFunctionLimitBoundsTasksAndMessagesTogether(t *testing.T) {
	const n, limit = 60, 3
	m := &meter{serviceTime: 3 * time.Millisecond}
	src := newChanSource()
	b := runBoth(t, m, limit, src, nil)
	var ids []string
	for i := range n {
		src.send(fmt.Sprintf("m%d", i))
		ids = append(ids, b.submit(t))
	}
	for _, id := range ids {
		b.waitSucceeded(t, id)
	}
	for range n {
		select {
		case <-src.settled:
		case <-time.After(20 * time.Second):
			t.Fatal("messages not settled within 20s")
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tasks != n || m.msgs != n {
		t.Fatalf("ran %d tasks and %d messages, want %d each", m.tasks, m.msgs, n)
	}
	if m.peak > limit {
		t.Fatalf("peak %d invocations in flight, over max_concurrency %d shared by tasks and messages", m.peak, limit)
	}
	if !m.mixed {
		t.Fatal("tasks and messages never ran at the same time: the test did not exercise the shared limit")
	}
}

func TestSlotCoversRecordingNotDeliveries(t *testing.T) {
	m := &meter{started: make(chan string, 100)}
	src := newChanSource()
	sink := &gatedSink{entered: make(chan string, 100), release: make(chan struct{})}
	b := runBoth(t, m, 1, src, sink)
	started := func(want string) {
		t.Helper()
		for {
			select {
			case id := <-m.started:
				if id == want {
					return
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s not invoked within 10s", want)
			}
		}
	}
	entered := func(ch chan string, want string) {
		t.Helper()
		for {
			select {
			case id := <-ch:
				if id == want {
					return
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s did not get there within 10s", want)
			}
		}
	}

	// A task holds the function's only slot while its completion is
	// written: a message waits for it.
	b.q.hold.Store(true)
	t1 := b.submit(t)
	started(t1)
	entered(b.q.entered, t1)
	src.send("m1")
	select {
	case id := <-m.started:
		t.Fatalf("%s invoked while the task's completion was being written (limit 1)", id)
	case <-time.After(200 * time.Millisecond): // an absence: nothing to poll
	}
	b.q.hold.Store(false)
	close(b.q.release)
	started("m1")
	b.waitSucceeded(t, t1)

	// A message's on_success delivery does not hold the slot: a task runs
	// while it waits, and that task's own outcome delivery (the outbox)
	// does not hold it either: another message runs meanwhile.
	sink.hold.Store(true)
	src.send("m2")
	started("m2")
	entered(sink.entered, "m2")
	t2 := b.submit(t)
	started(t2)
	b.waitSucceeded(t, t2)
	entered(sink.entered, t2)
	src.send("m3")
	started("m3")
	sink.hold.Store(false)
	close(sink.release)
	for _, want := range []string{"m1", "m2", "m3"} {
		select {
		case <-src.settled:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s not settled within 10s", want)
		}
	}
}
