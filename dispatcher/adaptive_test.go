package dispatcher

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/wire"
)

func TestSignalOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want Signal
	}{
		{"Success", nil, SignalOK},
		{"503", &Error{Code: "http_503", Err: http.ErrHandlerTimeout, StatusCode: 503}, SignalOverload},
		{"429", &Error{Code: "http_429", Err: http.ErrHandlerTimeout, StatusCode: 429}, SignalOverload},
		{"504", &Error{Code: "http_504", Err: http.ErrHandlerTimeout, StatusCode: 504}, SignalOverload},
		{"Timeout", context.DeadlineExceeded, SignalOverload},
		{"500", &Error{Code: "http_500", Err: http.ErrHandlerTimeout, StatusCode: 500}, SignalNeutral},
		{"400", &Error{Code: "http_400", Err: http.ErrHandlerTimeout, StatusCode: 400, permanent: true}, SignalNeutral},
		{"Loop", Permanent(wire.CodeLoopDetected, ErrLoopDetected), SignalNeutral},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := SignalOf(tt.err); got != tt.want {
				t.Errorf("SignalOf(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestFeedbackAIMD(t *testing.T) {
	t.Parallel()
	l := NewLimits()
	lane := wire.Lane{Tenant: "t", Function: "f"}
	l.SetFunction(lane, 32)
	now := time.Unix(1000, 0)
	l.now = func() time.Time { return now }

	// A round of 28 overload answers from requests started together halves
	// the limit once, not 28 times.
	start := now.Add(-time.Millisecond)
	for range 28 {
		l.Feedback(lane, start, SignalOverload)
	}
	if got := l.Capacity(lane); got != 16 {
		t.Fatalf("after one overloaded round: limit %d, want 16", got)
	}
	// Requests started after the decrease can decrease it again.
	now = now.Add(time.Second)
	l.Feedback(lane, now, SignalOverload)
	if got := l.Capacity(lane); got != 8 {
		t.Fatalf("after a second overloaded round: limit %d, want 8", got)
	}
	// Additive increase: about one slot per limit's worth of good answers
	// (1/8 + 1/8.125 + ... reaches 1 at the ninth).
	for range 8 {
		l.Feedback(lane, now, SignalOK)
	}
	if got := l.Capacity(lane); got != 8 {
		t.Fatalf("after 8 good answers at limit 8: limit %d, want still 8", got)
	}
	l.Feedback(lane, now, SignalOK)
	if got := l.Capacity(lane); got != 9 {
		t.Fatalf("after 9 good answers at limit 8: limit %d, want 9", got)
	}
	// Never above max_concurrency, never below 1.
	for range 2000 {
		l.Feedback(lane, now, SignalOK)
	}
	if got := l.Capacity(lane); got != 32 {
		t.Fatalf("limit %d, want capped at max_concurrency 32", got)
	}
	for i := range 20 {
		now = now.Add(time.Second)
		l.Feedback(lane, now.Add(time.Duration(i)), SignalOverload)
	}
	if got := l.Capacity(lane); got != 1 {
		t.Fatalf("limit %d, want floored at 1", got)
	}
	if !l.TryAcquire(lane) || l.TryAcquire(lane) {
		t.Fatal("with the adaptive limit at 1, exactly one slot must be free")
	}
}

// TestAdaptiveConcurrencyFindsTheBackendsCapacity drives Limits with a
// simulated backend that answers 503 above 4 concurrent requests: the
// limit settles around 4 instead of max_concurrency 32.
func TestAdaptiveConcurrencyFindsTheBackendsCapacity(t *testing.T) {
	t.Parallel()
	l := NewLimits()
	lane := wire.Lane{Tenant: "t", Function: "f"}
	l.SetFunction(lane, 32)
	var (
		mu             sync.Mutex
		inFlight, over int
		samples, sum   int
	)
	backend := func() Signal {
		mu.Lock()
		inFlight++
		n := inFlight
		samples++
		sum += n
		mu.Unlock()
		time.Sleep(200 * time.Microsecond) // the request's service time
		mu.Lock()
		inFlight--
		mu.Unlock()
		if n > 4 {
			mu.Lock()
			over++
			mu.Unlock()
			return SignalOverload
		}
		return SignalOK
	}
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 100 {
				if err := l.Acquire(context.Background(), lane); err != nil {
					t.Error(err)
					return
				}
				start := time.Now()
				l.Feedback(lane, start, backend())
				l.Release(lane)
			}
		})
	}
	wg.Wait()
	mean := float64(sum) / float64(samples)
	t.Logf("mean in flight %.2f, overloaded answers %d of %d, final limit %d", mean, over, samples, l.Capacity(lane))
	if mean > 6 {
		t.Errorf("mean in flight %.2f, want about 4 (not max_concurrency 32)", mean)
	}
	// AIMD probes above the capacity now and then; without it 28 of every
	// 32 requests would be refused.
	if over > samples/3 {
		t.Errorf("%d of %d answers were 503: the limit did not back off", over, samples)
	}
}
