package dispatcher

import (
	"context"
	"testing"
	"time"

	"github.com/ferrydev/ferry/wire"
)

func TestRatesTenantAndFunction(t *testing.T) {
	t.Parallel()
	r := NewRates()
	a := wire.Lane{Tenant: "t", Function: "a"}
	b := wire.Lane{Tenant: "t", Function: "b"}
	other := wire.Lane{Tenant: "u", Function: "a"}
	r.SetTenant("t", 10, 3) // 10/s, burst 3
	r.SetFunction(a, 2, 1)  // 2/s, burst 1
	now := time.Unix(1000, 0)

	if w := r.TakeAt(a, now); w != 0 {
		t.Fatalf("first take of a waited %v", w)
	}
	w := r.TakeAt(a, now)
	if w < 490*time.Millisecond || w > 500*time.Millisecond {
		t.Fatalf("second take of a: wait %v, want about 500ms (2/s)", w)
	}
	// b only has the tenant's bucket: 2 tokens left of its burst of 3.
	for i := range 2 {
		if w := r.TakeAt(b, now); w != 0 {
			t.Fatalf("take %d of b waited %v", i, w)
		}
	}
	if w := r.TakeAt(b, now); w < 90*time.Millisecond || w > 100*time.Millisecond {
		t.Fatalf("tenant bucket empty: wait %v, want about 100ms (10/s)", w)
	}
	// A refused take takes nothing: after the wait, it succeeds.
	if w := r.TakeAt(b, now.Add(100*time.Millisecond)); w != 0 {
		t.Fatalf("take after the wait: %v", w)
	}
	// Other tenants are not limited.
	for range 100 {
		if w := r.TakeAt(other, now); w != 0 {
			t.Fatalf("unlimited tenant waited %v", w)
		}
	}
	if ts, ls, w := r.held(now.Add(time.Second)); len(ts)+len(ls) != 0 || w != 0 {
		t.Fatalf("held after refill: %v %v %v", ts, ls, w)
	}
}

func TestLimitsAcquireWaitsForRate(t *testing.T) {
	t.Parallel()
	l := NewLimits()
	lane := wire.Lane{Tenant: "t", Function: "f"}
	l.Rates().SetFunction(lane, 50, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	for range 6 {
		if err := l.Acquire(ctx, lane); err != nil {
			t.Fatal(err)
		}
		l.Release(lane)
	}
	// 6 acquisitions at 50/s with a burst of 1 need at least 5 × 20ms.
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Errorf("6 acquisitions took %v, want >= 100ms at 50/s", el)
	}
	if !blocks(l, lane) {
		t.Error("lane not blocked right after the bucket emptied")
	}
	if w := l.RateWake(); w.IsZero() {
		t.Error("RateWake is zero after Blocked held the lane back for its rate")
	}
	if w := l.RateWake(); !w.IsZero() {
		t.Error("RateWake did not forget")
	}
}
