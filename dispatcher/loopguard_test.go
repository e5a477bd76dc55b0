package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/ferrydev/ferry/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

var quietLog = slog.New(slog.DiscardHandler)

const tp1 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

func TestLoopGuardHops(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	g := NewLoopGuard(4, time.Minute, m, quietLog)
	calls := 0
	b := Chain(BackendFunc(func(context.Context, *Invocation) (*Result, error) { calls++; return &Result{}, nil }), guarded(g))
	for hops, wantRun := range []bool{true, true, true, true, false, false} {
		_, err := b.Invoke(context.Background(), &Invocation{Tenant: "t", Function: "f", Hops: hops, Attempt: 1})
		if ran := err == nil; ran != wantRun {
			t.Fatalf("hops %d: ran = %v (err %v), want %v", hops, ran, err, wantRun)
		}
		if err != nil && (!errors.Is(err, ErrLoopDetected) || Classify(err).Code != wire.CodeLoopDetected || !Classify(err).Permanent) {
			t.Fatalf("hops %d: error %v, want a permanent loop_detected", hops, err)
		}
	}
	if calls != 4 {
		t.Errorf("backend ran %d times, want 4 (hops 0..3 with max_hops 4)", calls)
	}
	if n := testutil.ToFloat64(m.loops.WithLabelValues("t", "f", "hops")); n != 2 {
		t.Errorf("ferry_loops_detected_total{by=hops} = %v, want 2", n)
	}
}

func TestLoopGuardTrace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		inv     func(i int) *Invocation
		wantRun int
	}{
		// Code that forwards traceparent but drops ferry-hops: every
		// invocation arrives with 0 hops, in the same trace.
		{"SameTraceNoHops", func(i int) *Invocation {
			return &Invocation{ID: fmt.Sprint(i), Tenant: "t", Function: "f", TraceParent: tp1, Attempt: 1}
		}, 5},
		// Retries of one event are not a loop.
		{"RetriesNotCounted", func(i int) *Invocation {
			return &Invocation{ID: "x", Tenant: "t", Function: "f", TraceParent: tp1, Attempt: i + 1}
		}, 20},
		{"DistinctTraces", func(i int) *Invocation {
			return &Invocation{ID: fmt.Sprint(i), Tenant: "t", Function: "f", Attempt: 1,
				TraceParent: fmt.Sprintf("00-%032x-b7ad6b7169203331-01", i+1)}
		}, 20},
		// Other functions of the trace have their own counts.
		{"OtherFunctions", func(i int) *Invocation {
			return &Invocation{ID: fmt.Sprint(i), Tenant: "t", Function: fmt.Sprint("f", i%4), TraceParent: tp1, Attempt: 1}
		}, 20},
		{"NoTrace", func(i int) *Invocation { return &Invocation{ID: fmt.Sprint(i), Tenant: "t", Function: "f", Attempt: 1} }, 20},
		{"MalformedTrace", func(i int) *Invocation {
			return &Invocation{ID: fmt.Sprint(i), Tenant: "t", Function: "f", TraceParent: "00-zz-yy-01", Attempt: 1}
		}, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewLoopGuard(5, time.Minute, nil, quietLog)
			b := Chain(BackendFunc(func(context.Context, *Invocation) (*Result, error) { return &Result{}, nil }), guarded(g))
			ran := 0
			for i := range 20 {
				_, err := b.Invoke(context.Background(), tt.inv(i))
				switch {
				case err == nil:
					ran++
				case !errors.Is(err, ErrLoopDetected):
					t.Fatalf("invocation %d: %v", i, err)
				}
			}
			if ran != tt.wantRun {
				t.Errorf("%d of 20 invocations ran, want %d", ran, tt.wantRun)
			}
		})
	}
}

func TestTraceCounterWindow(t *testing.T) {
	t.Parallel()
	c := newTraceCounts(time.Minute, 1000)
	k := traceKey{trace: traceID(tp1), lane: wire.Lane{Tenant: "t", Function: "f"}}
	t0 := time.Unix(1000, 0)
	for i := range 4 {
		if n := c.add(k, t0.Add(time.Duration(i)*time.Second)); n != i+1 {
			t.Fatalf("add %d = %d, want %d", i, n, i+1)
		}
	}
	// Half a window later the counts are in the old generation: still counted.
	if n := c.add(k, t0.Add(40*time.Second)); n != 5 {
		t.Fatalf("add after half a window = %d, want 5", n)
	}
	// A whole window later they are gone.
	if n := c.add(k, t0.Add(2*time.Minute)); n != 1 {
		t.Fatalf("add after the window = %d, want 1", n)
	}
}

func TestTraceCounterBoundsMemory(t *testing.T) {
	t.Parallel()
	c := newTraceCounts(time.Hour, 100)
	now := time.Unix(1000, 0)
	for i := range 1000 {
		k := traceKey{lane: wire.Lane{Tenant: "t", Function: fmt.Sprint(i)}}
		c.add(k, now)
	}
	if n := len(c.cur) + len(c.prev); n > 200 {
		t.Errorf("counter holds %d entries, want at most 2 × 100", n)
	}
}

func TestTraceMiddlewareKeepsTheTrace(t *testing.T) {
	t.Parallel()
	tracer := sdktrace.NewTracerProvider().Tracer("test")
	var got []string
	b := Chain(BackendFunc(func(_ context.Context, inv *Invocation) (*Result, error) {
		got = append(got, inv.TraceParent)
		return &Result{}, nil
	}), Trace(tracer))
	in := &Invocation{TraceParent: tp1}
	if _, err := b.Invoke(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Invoke(context.Background(), &Invocation{}); err != nil {
		t.Fatal(err)
	}
	if traceID(got[0]) != traceID(tp1) || got[0] == tp1 {
		t.Errorf("backend traceparent %q: want a child span of %q (same trace id, new span id)", got[0], tp1)
	}
	if in.TraceParent != tp1 {
		t.Errorf("the caller's invocation was changed: %q", in.TraceParent)
	}
	if !traceID(got[1]).IsValid() {
		t.Errorf("an invocation without a trace got traceparent %q, want a new trace", got[1])
	}
}

// guarded runs the loop guard's screen before next, as Attempt does.
func guarded(g *LoopGuard) Middleware {
	return func(next Backend) Backend {
		return BackendFunc(func(ctx context.Context, inv *Invocation) (*Result, error) {
			var refused []Refusal
			run, err := g.screen(ctx, wire.Lane{Tenant: inv.Tenant, Function: inv.Function}, inv, &refused)
			if err != nil {
				return nil, err
			}
			return next.Invoke(ctx, run)
		})
	}
}

func TestLoopGuardBatch(t *testing.T) {
	t.Parallel()
	g := NewLoopGuard(4, time.Minute, nil, quietLog)
	lane := wire.Lane{Tenant: "t", Function: "f"}
	batch := func(hops ...int) *Invocation {
		inv := &Invocation{Tenant: "t", Function: "f", Attempt: 1}
		for i, h := range hops {
			inv.Batch = append(inv.Batch, Event{ID: fmt.Sprint("m", i), Hops: h, Source: fmt.Sprint("src", i),
				TraceParent: fmt.Sprintf("00-%032x-b7ad6b7169203331-01", i+1), Time: time.Unix(int64(i), 0)})
			inv.Hops = max(inv.Hops, h)
		}
		inv.ID = BatchID("m0", len(hops))
		inv.Source, inv.TraceParent, inv.Time = inv.Batch[0].Source, inv.Batch[0].TraceParent, inv.Batch[0].Time
		return inv
	}
	tests := []struct {
		name        string
		inv         *Invocation
		wantRefused []int
		wantIDs     []string // the events left to run; nil: all refused
		wantID      string
		wantHops    int
	}{
		{"NoneRefused", batch(0, 3, 1), nil, []string{"m0", "m1", "m2"}, "batch:m0+3", 3},
		{"SomeRefused", batch(4, 1, 9, 2), []int{0, 2}, []string{"m1", "m3"}, "batch:m1+2", 2},
		{"AllRefused", batch(4, 5), []int{0, 1}, nil, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := slices.Clone(tt.inv.Batch)
			var refusals []Refusal
			run, err := g.screen(context.Background(), lane, tt.inv, &refusals)
			var refused []int
			for _, r := range refusals {
				refused = append(refused, r.Index)
				if r.Failure.Code != wire.CodeLoopDetected || !r.Failure.Permanent {
					t.Errorf("refusal %+v, want a permanent loop_detected", r)
				}
			}
			if !slices.EqualFunc(before, tt.inv.Batch, func(a, b Event) bool { return a.ID == b.ID }) {
				t.Fatal("screen changed the caller's batch")
			}
			if !slices.Equal(refused, tt.wantRefused) {
				t.Fatalf("refused %v, want %v", refused, tt.wantRefused)
			}
			if tt.wantIDs == nil {
				if !errors.Is(err, ErrLoopDetected) || run != nil {
					t.Fatalf("screen = %v, %v; want the whole batch refused", run, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, ev := range run.Batch {
				ids = append(ids, ev.ID)
			}
			if !slices.Equal(ids, tt.wantIDs) || run.ID != tt.wantID || run.Hops != tt.wantHops {
				t.Fatalf("run %v id %s hops %d, want %v %s %d", ids, run.ID, run.Hops, tt.wantIDs, tt.wantID, tt.wantHops)
			}
			// The batch takes its trace, source and time from its first
			// kept event, not from a refused one.
			first := run.Batch[0]
			if run.TraceParent != first.TraceParent || run.Source != first.Source || !run.Time.Equal(first.Time) {
				t.Fatalf("run has trace %q source %q time %v, want those of %s", run.TraceParent, run.Source, run.Time, first.ID)
			}
		})
	}
}
