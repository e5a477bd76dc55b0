package dispatcher

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/wire"
)

func TestLimitsTenantAndFunction(t *testing.T) {
	l := NewLimits()
	a := wire.Lane{Tenant: "t", Function: "a"}
	b := wire.Lane{Tenant: "t", Function: "b"}
	l.SetTenant("t", 3)
	l.SetFunction(a, 2)
	l.SetFunction(b, 2)

	for i, want := range []bool{true, true, false} {
		if got := l.TryAcquire(a); got != want {
			t.Fatalf("acquire a #%d = %v, want %v", i+1, got, want)
		}
	}
	if !l.TryAcquire(b) {
		t.Fatal("b should fit: tenant has 3 slots, 2 used")
	}
	if l.Allow(b) || l.TryAcquire(b) {
		t.Fatal("tenant limit 3 reached, b must not fit")
	}
	l.Release(a)
	select {
	case <-l.Freed():
	default:
		t.Fatal("Release did not signal Freed")
	}
	if !l.TryAcquire(b) {
		t.Fatal("after a release, b should fit")
	}
	if got := l.InFlight(b); got != 2 {
		t.Fatalf("InFlight(b) = %d, want 2", got)
	}
}

func TestLimitsAcquireWaitsForRelease(t *testing.T) {
	l := NewLimits()
	lane := wire.Lane{Tenant: "t", Function: "f"}
	l.SetFunction(lane, 1)
	if !l.TryAcquire(lane) {
		t.Fatal("first acquire failed")
	}
	got := make(chan error, 1)
	go func() { got <- l.Acquire(context.Background(), lane) }()
	select {
	case err := <-got:
		t.Fatalf("Acquire returned %v while the slot was taken", err)
	case <-time.After(20 * time.Millisecond): // give it a chance to misbehave
	}
	l.Release(lane)
	if err := <-got; err != nil {
		t.Fatalf("Acquire after release: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Acquire(ctx, lane); !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire on a full lane with a cancelled ctx = %v, want context.Canceled", err)
	}
}

func TestLimitsNeverExceededUnderContention(t *testing.T) {
	l := NewLimits()
	lane := wire.Lane{Tenant: "t", Function: "f"}
	l.SetTenant("t", 3)
	var mu sync.Mutex
	cur, peak := 0, 0
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 50 {
				if err := l.Acquire(context.Background(), lane); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				cur++
				peak = max(peak, cur)
				mu.Unlock()
				mu.Lock()
				cur--
				mu.Unlock()
				l.Release(lane)
			}
		})
	}
	wg.Wait()
	if peak > 3 {
		t.Fatalf("peak %d exceeds the tenant limit 3", peak)
	}
}

func TestMiddleware(t *testing.T) {
	called := 0
	ok := BackendFunc(func(ctx context.Context, inv *Invocation) (*Result, error) {
		called++
		if _, has := ctx.Deadline(); !has {
			return nil, errors.New("no deadline")
		}
		return &Result{Output: []byte("ok")}, nil
	})
	panics := BackendFunc(func(context.Context, *Invocation) (*Result, error) { panic("boom") })

	t.Run("LoopGuardRefusesAtMaxHops", func(t *testing.T) {
		b := Chain(ok, Standard(nil, NewLoopGuard(16, time.Minute, nil, nil), nil, time.Second)...)
		_, err := b.Invoke(context.Background(), &Invocation{Hops: 16})
		c := Classify(err)
		if !errors.Is(err, ErrLoopDetected) || c.Code != wire.CodeLoopDetected || !c.Permanent {
			t.Fatalf("err = %v (%+v), want permanent loop_detected", err, c)
		}
		if called != 0 {
			t.Fatalf("backend called %d times, want 0", called)
		}
	})
	t.Run("BelowMaxHopsRuns", func(t *testing.T) {
		b := Chain(ok, Standard(nil, NewLoopGuard(16, time.Minute, nil, nil), nil, time.Second)...)
		if _, err := b.Invoke(context.Background(), &Invocation{Hops: 15}); err != nil {
			t.Fatal(err)
		}
		if called != 1 {
			t.Fatalf("backend called %d times, want 1", called)
		}
	})
	t.Run("RecoverNamesThePanicSite", func(t *testing.T) {
		_, err := Chain(panics, Standard(nil, NewLoopGuard(16, time.Minute, nil, nil), nil, time.Second)...).Invoke(context.Background(), &Invocation{})
		var pe *PanicError
		if !errors.As(err, &pe) || !strings.Contains(pe.Where, "limits_test.go:") || Classify(err).Permanent {
			t.Fatalf("err = %v, want a retryable PanicError at limits_test.go", err)
		}
	})
}
