package poller_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/wire"
)

// Pausing a trigger (SetPaused) holds its reader: Read is not called
// again, what is in flight finishes and is settled, and the source stays
// connected. These tests check the hold between Reads, during a Read,
// during a reconnect and at shutdown.

// absent is how long the tests watch for something that must not happen
// (a Read, an invocation): a bounded wait is the only way to see absence.
const absent = 300 * time.Millisecond

// feedSource hands over, one per Read, the messages of its memSource that
// the test feeds; each Read waits until fed or ctx ends.
type feedSource struct {
	*memSource
	feed  chan *poller.Message // unbuffered: a send returns once a Read took it
	reads atomic.Int32         // Reads started
}

func newFeedSource(n int) *feedSource {
	return &feedSource{memSource: newMemSource(n, 1, 1, nil), feed: make(chan *poller.Message)}
}

func (f *feedSource) Read(ctx context.Context) ([]*poller.Message, error) {
	f.reads.Add(1)
	select {
	case m := <-f.feed:
		return []*poller.Message{m}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// give feeds message i to the Read waiting (or the next one).
func (f *feedSource) give(t *testing.T, i int) {
	t.Helper()
	select {
	case f.feed <- f.msgs[i]:
	case <-time.After(10 * time.Second):
		t.Fatalf("no Read took %s within 10s", f.msgs[i].ID)
	}
}

// lagSource is a memSource that reports a lag.
type lagSource struct {
	*memSource
	lag int64
}

func (l *lagSource) Lag(context.Context) (int64, error) { return l.lag, nil }

// newPoller builds a Poller of function f (backend b, 10 slots) over src
// without running it.
func newPoller(t *testing.T, src poller.Source, b dispatcher.Backend) *poller.Poller {
	t.Helper()
	fn := &dispatcher.Function{
		Lane: wire.Lane{Tenant: "t", Function: "f"}, Backend: b, MaxConcurrency: 10,
		Retry: dispatcher.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, Multiplier: 2, MaxAge: time.Hour},
	}
	d, err := dispatcher.New(dispatcher.Config{Functions: []*dispatcher.Function{fn}, MaxHops: 16, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p, err := poller.New(poller.Config{Name: "trig", Kind: "mem", Source: src, Dispatcher: d, Function: fn, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs p until the returned stop is called (or the test ends); stop
// fails t when Run does not return within 10s.
func run(t *testing.T, p *poller.Poller) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return within 10s of its context's end")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitUntil polls cond every millisecond until it holds, failing t after 10s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10s: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// holds checks that cond stays true for the absent window.
func holds(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(absent)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s no longer holds", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPauseStopsReadingAndFinishesInFlight: paused while an invocation
// runs, the trigger reads nothing more; the invocation finishes and is
// settled; resumed, it reads on from where it stopped, every message
// invoked once.
func TestPauseStopsReadingAndFinishesInFlight(t *testing.T) {
	t.Parallel()
	c := &calls{}
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var first sync.Once
	b := dispatcher.BackendFunc(func(ctx context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		c.add(inv)
		first.Do(func() {
			entered <- struct{}{}
			<-release
		})
		return &dispatcher.Result{}, nil
	})
	src := newMemSource(50, 1, 1, nil)
	p := newPoller(t, src, b)
	run(t, p)
	<-entered // m0 is being invoked; the reader may hold a few more
	p.SetPaused(true)
	if !p.Paused() {
		t.Fatal("Paused() = false after SetPaused(true)")
	}
	close(release)
	read := 0
	waitUntil(t, "what was read is settled", func() bool {
		read = src.read()
		src.mu.Lock()
		defer src.mu.Unlock()
		return len(src.acked) == read
	})
	holds(t, "nothing read or invoked while paused", func() bool { return src.read() == read && len(c.all()) == read })
	if read == 50 {
		t.Fatalf("read all 50 messages before the pause took; want the reader held")
	}
	if !p.Connected() {
		t.Error("Connected() = false while paused; want the source left connected")
	}

	p.SetPaused(false)
	src.waitSettled(t, 50) // all of them, those settled before the pause included
	seen := map[string]int{}
	for _, batch := range c.all() {
		for _, id := range batch {
			seen[id]++
		}
	}
	for i := range 50 {
		if id := src.msgs[i].ID; seen[id] != 1 {
			t.Errorf("%s invoked %d times, want once", id, seen[id])
		}
	}
	for id, err := range src.acked {
		if err != nil {
			t.Errorf("%s settled with %v, want acked", id, err)
		}
	}
}

// TestPauseHoldsTheRestOfARead: of one Read's 50 messages, those not yet
// handed to the worker when the trigger pauses wait for the resume.
func TestPauseHoldsTheRestOfARead(t *testing.T) {
	t.Parallel()
	c := &calls{}
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var first sync.Once
	b := dispatcher.BackendFunc(func(ctx context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		c.add(inv)
		first.Do(func() {
			entered <- struct{}{}
			<-release
		})
		return &dispatcher.Result{}, nil
	})
	src := newMemSource(50, 1, 50, nil) // one Read returns all 50
	p := newPoller(t, src, b)
	run(t, p)
	<-entered
	p.SetPaused(true)
	close(release)
	// The worker's current message, the one in its channel and the one
	// waiting for room: at most 3 invoked.
	waitUntil(t, "the invoked messages settled", func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return len(src.acked) == len(c.all())
	})
	n := len(c.all())
	holds(t, "no more invocations while paused", func() bool { return len(c.all()) == n })
	if n > 3 {
		t.Fatalf("%d of the Read's 50 messages invoked after the pause, want at most 3", n)
	}
	p.SetPaused(false)
	src.waitSettled(t, 50)
	if got := len(c.all()); got != 50 {
		t.Fatalf("%d invocations, want 50", got)
	}
}

// TestPauseDuringReadHoldsWhatItReturns: a Read that was waiting when the
// trigger paused returns a message later: the message is not invoked
// until the trigger resumes, and no other Read starts meanwhile.
func TestPauseDuringReadHoldsWhatItReturns(t *testing.T) {
	t.Parallel()
	c := &calls{}
	src := newFeedSource(2)
	p := newPoller(t, src, ok(c))
	run(t, p)
	waitUntil(t, "a Read waits", func() bool { return src.reads.Load() == 1 })
	p.SetPaused(true)
	src.give(t, 0)
	holds(t, "m0 held, no Read", func() bool { return len(c.all()) == 0 && src.reads.Load() == 1 })

	p.SetPaused(false)
	src.waitSettled(t, 1)
	src.give(t, 1)
	src.waitSettled(t, 1)
	if got := c.all(); len(got) != 2 || got[0][0] != "m0" || got[1][0] != "m1" {
		t.Fatalf("invocations %v, want m0 then m1", got)
	}
}

// TestPauseWhileReconnecting: paused while its source refuses to connect,
// the trigger goes on connecting (keeping its place in the group), then
// reads nothing until resumed.
func TestPauseWhileReconnecting(t *testing.T) {
	t.Parallel()
	c := &calls{}
	mem := newMemSource(20, 1, 5, nil)
	src := &flakySource{memSource: mem, failConnect: 2}
	p := newPoller(t, src, ok(c))
	run(t, p)
	waitUntil(t, "LastError reports the refused connect", func() bool {
		return strings.Contains(p.LastError(), "connection refused")
	})
	p.SetPaused(true)
	waitUntil(t, "connected", p.Connected)
	holds(t, "nothing read while paused", func() bool { return mem.read() == 0 })
	if e := p.LastError(); e != "" {
		t.Errorf("LastError() = %q once connected, want none", e)
	}
	p.SetPaused(false)
	mem.waitSettled(t, 20)
	if n := len(c.all()); n != 20 {
		t.Fatalf("%d invoked after the resume, want 20", n)
	}
}

// TestShutdownWhilePaused: a trigger paused before Run connects and reads
// nothing, and its Run returns promptly when its context ends; a message
// held since a pause is handed back to the broker, never invoked.
func TestShutdownWhilePaused(t *testing.T) {
	t.Parallel()
	t.Run("PausedFromTheStart", func(t *testing.T) {
		t.Parallel()
		c := &calls{}
		src := newMemSource(5, 1, 5, nil)
		p := newPoller(t, src, ok(c))
		p.SetPaused(true)
		stop := run(t, p)
		waitUntil(t, "connected", p.Connected)
		holds(t, "nothing read", func() bool { return src.read() == 0 })
		stop()
		if src.read() != 0 || len(c.all()) != 0 {
			t.Fatalf("read %d, invoked %d; want nothing", src.read(), len(c.all()))
		}
	})
	t.Run("HeldMessageHandedBack", func(t *testing.T) {
		t.Parallel()
		c := &calls{}
		src := newFeedSource(1)
		p := newPoller(t, src, ok(c))
		stop := run(t, p)
		waitUntil(t, "a Read waits", func() bool { return src.reads.Load() == 1 })
		p.SetPaused(true)
		src.give(t, 0)
		stop()
		src.waitSettled(t, 1)
		src.mu.Lock()
		err := src.acked["m0"]
		src.mu.Unlock()
		if err == nil || len(c.all()) != 0 {
			t.Fatalf("m0 settled with %v, invocations %v; want it handed back, never invoked", err, c.all())
		}
	})
}

// TestPollerReportsKindAndLag: Kind is the config's; Lag is what the
// source reported last, paused or not, and unknown for a source without
// a lag.
func TestPollerReportsKindAndLag(t *testing.T) {
	t.Parallel()
	src := &lagSource{memSource: newMemSource(0, 1, 1, nil), lag: 42}
	p := newPoller(t, src, ok(&calls{}))
	if _, known := p.Lag(); known {
		t.Error("Lag known before Run")
	}
	p.SetPaused(true)
	run(t, p)
	waitUntil(t, "the lag read", func() bool { _, known := p.Lag(); return known })
	if n, _ := p.Lag(); n != 42 || p.Kind() != "mem" {
		t.Errorf("Lag() = %d, Kind() = %q; want 42, mem", n, p.Kind())
	}
	plain := newPoller(t, newMemSource(0, 1, 1, nil), ok(&calls{}))
	run(t, plain)
	waitUntil(t, "connected", plain.Connected)
	if _, known := plain.Lag(); known {
		t.Error("Lag known for a source without a lag")
	}
}
