package poller_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/wire"
)

// recordSink records outcomes, or refuses them all when refuse is set.
type recordSink struct {
	mu     sync.Mutex
	got    []*wire.Outcome
	refuse bool
}

func (r *recordSink) Deliver(_ context.Context, o *wire.Outcome) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refuse {
		return errors.New("destination down")
	}
	r.got = append(r.got, o)
	return nil
}

func (r *recordSink) all() []*wire.Outcome {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*wire.Outcome(nil), r.got...)
}

// deliverer is what a destination's sink does; named here so that the
// poller's tests import no sinks package.
type deliverer interface {
	Deliver(ctx context.Context, o *wire.Outcome) error
}

func onSuccess(sink deliverer) func(*poller.Config) {
	return func(cfg *poller.Config) {
		cfg.Function.OnSuccess = []dispatcher.Destination{{Name: "on_success[0]", Kind: "test", Sink: sink, Timeout: time.Second,
			Retry: dispatcher.RetryPolicy{MaxAttempts: 2, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond, Multiplier: 1, MaxAge: time.Hour}}}
	}
}

func TestOnSuccessOutcomesBeforeCommit(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	src := newMemSource(20, 2, 5, func(i int, m *poller.Message) {
		m.Headers[wire.HeaderHops] = "2"
		m.Headers[wire.HeaderTraceParent] = tp
	})
	out := dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		return &dispatcher.Result{Output: []byte(fmt.Sprintf(`{"done":%q}`, inv.ID)), StatusCode: 200}, nil
	})
	sink := &recordSink{}
	r := start(t, src, out, 10, onSuccess(sink))
	src.waitSettled(t, 20)
	r.stop()
	got := sink.all()
	if len(got) != 20 {
		t.Fatalf("on_success received %d outcomes, want 20 (one per message)", len(got))
	}
	for _, o := range got {
		rc := o.RequestContext
		if o.Type != wire.TypeSucceeded || o.Hops != 3 || o.TraceParent != tp || string(o.Output) != fmt.Sprintf(`{"done":%q}`, o.ID) ||
			rc == nil || rc.Condition != "success" || rc.Trigger != "trig" || rc.LastStatus != 200 || rc.Attempts != 1 || o.RequestPayload != nil {
			t.Fatalf("outcome %+v (request context %+v): want succeeded, hops 3, the trace, the output, condition success, trigger trig", o, rc)
		}
	}
	for id, err := range src.acked {
		if err != nil {
			t.Fatalf("%s settled with %v, want committed", id, err)
		}
	}
}

func TestOnSuccessDestinationDownLeavesTheMessage(t *testing.T) {
	src := newMemSource(3, 1, 3, nil)
	sink := &recordSink{refuse: true}
	r := start(t, src, ok(&calls{}), 10, onSuccess(sink))
	src.waitSettled(t, 3)
	r.stop()
	for id, err := range src.acked {
		if err == nil {
			t.Fatalf("%s was committed although its on_success delivery failed", id)
		}
	}
}

func TestLoopGuardRefusesMessagesAtMaxHops(t *testing.T) {
	src := newMemSource(4, 1, 4, func(i int, m *poller.Message) {
		m.Headers[wire.HeaderHops] = fmt.Sprint(14 + i) // 14, 15, 16, 17 with max_hops 16
	})
	c := &calls{}
	r := start(t, src, ok(c), 10, nil)
	src.waitSettled(t, 4)
	r.stop()
	if n := len(c.all()); n != 2 {
		t.Fatalf("backend ran %d times, want 2 (hops 14 and 15)", n)
	}
	codes := r.sink.codes()
	if len(codes) != 2 || codes["m2"] != "loop_detected" || codes["m3"] != "loop_detected" {
		t.Fatalf("on_failure codes %v, want m2 and m3 loop_detected", codes)
	}
	for _, o := range r.sink.got {
		if string(o.RequestPayload) == "" || o.RequestContext == nil || o.RequestContext.Condition != "loop_detected" || o.Attempts != 0 {
			t.Fatalf("failure record %+v: want the request payload, condition loop_detected, 0 attempts", o)
		}
	}
}

func TestRateSlowsTheTriggerDownWithoutDropping(t *testing.T) {
	const n, perSecond = 30, 100
	src := newMemSource(n, 3, 10, nil)
	c := &calls{}
	began := time.Now()
	r := startWith(t, src, ok(c), 10, func(dc *dispatcher.Config) {
		dc.FunctionRates = map[wire.Lane]dispatcher.RateLimit{{Tenant: "t", Function: "f"}: {PerSecond: perSecond, Burst: 1}}
	}, func(cfg *poller.Config) { cfg.Concurrency = 4 })
	src.waitSettled(t, n)
	elapsed := time.Since(began)
	r.stop()
	if got := len(c.all()); got != n {
		t.Fatalf("invoked %d of %d messages", got, n)
	}
	for id, err := range src.acked {
		if err != nil {
			t.Fatalf("%s settled with %v", id, err)
		}
	}
	// 30 invocations at 100/s with a burst of 1 cannot take less than 290 ms.
	if min := time.Duration(n-1) * time.Second / perSecond; elapsed < min {
		t.Fatalf("%d invocations took %v at %d/s, want at least %v", n, elapsed, perSecond, min)
	}
}

// TestTraceLoopIsRefusedWithoutAnAttempt: messages that forward one trace
// but no hop count are refused once the function ran max_hops times in the
// trace; the refusal is not an attempt (attempts 0, as for a refused task
// or a message refused for its hop count).
func TestTraceLoopIsRefusedWithoutAnAttempt(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	src := newMemSource(4, 1, 1, func(_ int, m *poller.Message) { m.Headers[wire.HeaderTraceParent] = tp })
	c := &calls{}
	r := startWith(t, src, ok(c), 10, func(dc *dispatcher.Config) {
		dc.MaxHops, dc.TraceWindow = 2, time.Minute
	}, nil)
	src.waitSettled(t, 4)
	r.stop()
	if n := len(c.all()); n != 2 {
		t.Fatalf("backend ran %d times, want 2 (max_hops 2 in one trace)", n)
	}
	codes := r.sink.codes()
	if len(codes) != 2 || codes["m2"] != wire.CodeLoopDetected || codes["m3"] != wire.CodeLoopDetected {
		t.Fatalf("on_failure codes %v, want m2 and m3 loop_detected", codes)
	}
	for _, o := range r.sink.got {
		if o.Attempts != 0 || o.RequestContext.Attempts != 0 || o.RequestContext.Condition != wire.CodeLoopDetected {
			t.Fatalf("failure record %+v: want 0 attempts, condition loop_detected", o)
		}
	}
}
