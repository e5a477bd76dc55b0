package dispatcher

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/wire"
)

// scriptedRates is a RateStore that answers from a script of waits and
// errors (then 0), counting its calls.
type scriptedRates struct {
	mu     sync.Mutex
	script []any // time.Duration or error
	calls  int
}

func (s *scriptedRates) Take(ctx context.Context, _ wire.Lane) (time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if len(s.script) == 0 {
		return 0, nil
	}
	next := s.script[0]
	s.script = s.script[1:]
	if err, ok := next.(error); ok {
		return 0, err
	}
	return next.(time.Duration), nil
}

func (s *scriptedRates) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func TestLimitsSharedRateStoreRefusal(t *testing.T) {
	t.Parallel()
	lane := wire.Lane{Tenant: "t", Function: "f"}
	store := &scriptedRates{script: []any{50 * time.Millisecond}}
	l := NewLimits()
	l.SetRateStore(store, quietLog)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }

	if l.TryAcquire(lane) {
		t.Fatal("TryAcquire succeeded though the store refused")
	}
	if n := l.InFlight(lane); n != 0 {
		t.Fatalf("InFlight after a refusal = %d, want 0 (the slot is given back)", n)
	}
	if !blocks(l, lane) {
		t.Fatal("Blocked does not hold back the lane the store refused")
	}
	if w := l.RateWake(); !w.Equal(now.Add(50 * time.Millisecond)) {
		t.Fatalf("RateWake = %v, want the end of the store's wait", w)
	}
	if tenants, lanes := l.BlockedSlots(); len(tenants)+len(lanes) != 0 {
		t.Fatalf("BlockedSlots = %v %v, want none: no slot is taken", tenants, lanes)
	}
	if l.TryAcquire(lane) || store.count() != 1 {
		t.Fatalf("TryAcquire during the wait: asked the store %d times, want once", store.count())
	}
	now = now.Add(50 * time.Millisecond)
	if blocks(l, lane) {
		t.Fatal("lane still blocked after the store's wait")
	}
	if !l.TryAcquire(lane) || l.InFlight(lane) != 1 || store.count() != 2 {
		t.Fatalf("TryAcquire after the wait: in flight %d, store calls %d; want 1 and 2", l.InFlight(lane), store.count())
	}
}

func TestLimitsSharedRateStoreAcquireWaits(t *testing.T) {
	t.Parallel()
	lane := wire.Lane{Tenant: "t", Function: "f"}
	store := &scriptedRates{script: []any{30 * time.Millisecond}}
	l := NewLimits()
	l.SetRateStore(store, quietLog)
	start := time.Now()
	if err := l.Acquire(context.Background(), lane); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Errorf("Acquire returned after %v, before the store's wait of 30ms", el)
	}
	if n := store.count(); n != 2 {
		t.Errorf("store asked %d times, want 2 (refused, then after the wait)", n)
	}
}

func TestLimitsSharedRateStoreError(t *testing.T) {
	t.Parallel()
	lane := wire.Lane{Tenant: "t", Function: "f"}
	down := errors.New("connection refused")
	store := &scriptedRates{script: []any{down}}
	var logs bytes.Buffer
	l := NewLimits()
	l.SetRateStore(store, slog.New(slog.NewTextHandler(&logs, nil)))
	// The invocation is not lost: Acquire waits and takes the token once
	// the store answers.
	start := time.Now()
	if err := l.Acquire(context.Background(), lane); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < sharedRetry {
		t.Errorf("Acquire retried after %v, want %v", el, sharedRetry)
	}
	if !strings.Contains(logs.String(), "rate store unavailable") || !strings.Contains(logs.String(), "connection refused") {
		t.Errorf("no warning logged for the store's error:\n%s", logs.String())
	}
	l.Release(lane)

	// A context that ends while the store is down ends Acquire.
	store.mu.Lock()
	store.script = []any{down}
	store.mu.Unlock()
	l.mu.Lock()
	clear(l.heldUntil)
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.Acquire(ctx, lane); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with the store down and a deadline = %v, want DeadlineExceeded", err)
	}
	if n := l.InFlight(lane); n != 0 {
		t.Fatalf("InFlight = %d after a failed Acquire, want 0", n)
	}
}

func TestTryAcquireSlotTakesNoToken(t *testing.T) {
	t.Parallel()
	lane := wire.Lane{Tenant: "t", Function: "f"}
	l := NewLimits()
	l.SetFunction(lane, 1)
	l.Rates().SetFunction(lane, 1, 1)
	for range 5 {
		if !l.TryAcquireSlot(lane) {
			t.Fatal("TryAcquireSlot refused a free slot")
		}
		if l.TryAcquireSlot(lane) {
			t.Fatal("TryAcquireSlot took a second slot of a lane limited to 1")
		}
		l.Release(lane)
	}
	if !l.TryAcquire(lane) {
		t.Fatal("the rate's only token is gone: TryAcquireSlot took it")
	}
	l.Release(lane)
	if !blocks(l, lane) {
		t.Fatal("Blocked does not hold back a lane out of tokens")
	}
	if _, lanes := l.BlockedSlots(); len(lanes) != 0 {
		t.Fatalf("BlockedSlots = %v: it lists a lane held back only by its rate", lanes)
	}
}

// countedTraces is a TraceCounter that answers n, or err.
type countedTraces struct {
	n   int
	err error
}

func (c countedTraces) Count(context.Context, trace.TraceID, wire.Lane) (int, error) {
	return c.n, c.err
}

func TestLoopGuardSharedTraceCounter(t *testing.T) {
	t.Parallel()
	inv := func() *Invocation {
		return &Invocation{ID: "x", Tenant: "t", Function: "f", TraceParent: tp1, Attempt: 1}
	}
	t.Run("CountsComeFromTheStore", func(t *testing.T) {
		g := NewLoopGuard(3, time.Minute, nil, quietLog)
		g.SetTraceCounter(countedTraces{n: 3})
		if _, err := g.screen(context.Background(), wire.Lane{Tenant: "t", Function: "f"}, inv(), nil); err != nil {
			t.Fatalf("3rd invocation with max_hops 3: %v", err)
		}
		g.SetTraceCounter(countedTraces{n: 4})
		if _, err := g.screen(context.Background(), wire.Lane{Tenant: "t", Function: "f"}, inv(), nil); !errors.Is(err, ErrLoopDetected) {
			t.Fatalf("4th invocation with max_hops 3: %v, want loop_detected", err)
		}
	})
	t.Run("FailsOpen", func(t *testing.T) {
		var logs bytes.Buffer
		g := NewLoopGuard(3, time.Minute, nil, slog.New(slog.NewTextHandler(&logs, nil)))
		g.SetTraceCounter(countedTraces{n: 100, err: errors.New("connection refused")})
		if _, err := g.screen(context.Background(), wire.Lane{Tenant: "t", Function: "f"}, inv(), nil); err != nil {
			t.Fatalf("screen with the counter down = %v, want the invocation let through", err)
		}
		if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "connection refused") {
			t.Errorf("no warning logged:\n%s", logs.String())
		}
	})
	t.Run("OffStaysOff", func(t *testing.T) {
		g := NewLoopGuard(3, 0, nil, quietLog) // no trace window: no trace counting
		g.SetTraceCounter(countedTraces{n: 100})
		if _, err := g.screen(context.Background(), wire.Lane{Tenant: "t", Function: "f"}, inv(), nil); err != nil {
			t.Fatalf("screen without a trace window: %v", err)
		}
	})
}
