package dispatcher

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
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
	if !blocks(l, b) || l.TryAcquire(b) {
		t.Fatal("tenant limit 3 reached, b must not fit")
	}
	freed := l.Freed()
	l.Release(a)
	select {
	case <-freed:
	default:
		t.Fatal("Release did not signal Freed")
	}
	if blocks(l, b) || blocks(l, a) || !l.TryAcquire(b) {
		t.Fatal("after a release, a and b should fit")
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

	t.Run("TimeoutSetsADeadline", func(t *testing.T) {
		if _, err := Chain(ok, Standard(nil, nil, time.Second)...).Invoke(context.Background(), &Invocation{}); err != nil {
			t.Fatal(err)
		}
		if called != 1 {
			t.Fatalf("backend called %d times, want 1", called)
		}
	})
	t.Run("RecoverNamesThePanicSite", func(t *testing.T) {
		_, err := Chain(panics, Standard(nil, nil, time.Second)...).Invoke(context.Background(), &Invocation{})
		var pe *PanicError
		if !errors.As(err, &pe) || !strings.Contains(pe.Where, "limits_test.go:") || Classify(err).Permanent {
			t.Fatalf("err = %v, want a retryable PanicError at limits_test.go", err)
		}
	})
}

// blocks reports whether l's Blocked holds lane back, as a lease request
// made from it would.
func blocks(l *Limits, lane wire.Lane) bool {
	req := async.LeaseRequest{}
	req.BlockedTenants, req.BlockedLanes = l.Blocked()
	return req.Blocks(lane)
}

func TestBlockedFollowsSlots(t *testing.T) {
	l := NewLimits()
	a := wire.Lane{Tenant: "t", Function: "a"}
	l.SetFunction(a, 1)
	if ts, ls := l.Blocked(); len(ts)+len(ls) != 0 {
		t.Fatalf("Blocked with every slot free = %v %v", ts, ls)
	}
	if !l.TryAcquire(a) {
		t.Fatal("acquire failed")
	}
	if ts, ls := l.Blocked(); len(ts) != 0 || len(ls) != 1 || ls[0] != a {
		t.Fatalf("Blocked with a full = %v %v, want only the lane", ts, ls)
	}
	l.SetFunction(a, 2) // a raised limit frees the lane at once
	if blocks(l, a) {
		t.Fatal("a blocked after its limit was raised")
	}
	l.SetFunction(a, 1)
	l.Release(a)
	if blocks(l, a) {
		t.Fatal("a blocked after its slot was released")
	}
}

// TestReleaseWakesEveryWaiter: one release wakes both a task runner
// watching Freed and a trigger waiting in Acquire (neither takes the
// other's wake-up).
func TestReleaseWakesEveryWaiter(t *testing.T) {
	l := NewLimits()
	lane := wire.Lane{Tenant: "t", Function: "f"}
	l.SetFunction(lane, 1)
	if !l.TryAcquire(lane) {
		t.Fatal("first acquire failed")
	}
	for range 50 {
		acquired := make(chan error, 1)
		go func() { acquired <- l.Acquire(context.Background(), lane) }()
		// Let the Acquire find the lane full and wait; the watcher then
		// waits on the same release.
		deadline := time.Now().Add(5 * time.Second)
		for {
			l.mu.Lock()
			watched := l.watched
			l.mu.Unlock()
			if watched || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond) // poll interval
		}
		freed := l.Freed()
		l.Release(lane)
		select {
		case <-freed:
		case <-time.After(5 * time.Second):
			t.Fatal("the Freed watcher was not woken")
		}
		select {
		case err := <-acquired:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the waiting Acquire was not woken by the release")
		}
	}
}
