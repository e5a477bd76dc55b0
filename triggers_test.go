package ferry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferrydev/ferry/async/queuetest"
	"github.com/ferrydev/ferry/internal/routes"
)

func TestMemoryTriggerStatesContract(t *testing.T) {
	t.Parallel()
	queuetest.TestTriggerStates(t, queuetest.StatesHarness{
		Open: func(testing.TB) queuetest.TriggerStates { return &MemoryTriggerStates{} },
		// One process: its "other node" is the same value.
		Second: func(_ testing.TB, s queuetest.TriggerStates) queuetest.TriggerStates { return s },
	})
}

// fakeTrigger is a trigger that runs until its context ends.
type fakeTrigger struct {
	name, kind string
	paused     atomic.Bool
	lag        int64 // < 0: unknown
}

func (f *fakeTrigger) Name() string                  { return f.name }
func (f *fakeTrigger) Function() string              { return "f" }
func (f *fakeTrigger) Kind() string                  { return f.kind }
func (f *fakeTrigger) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (f *fakeTrigger) Connected() bool               { return true }
func (f *fakeTrigger) SetPaused(p bool)              { f.paused.Store(p) }
func (f *fakeTrigger) Paused() bool                  { return f.paused.Load() }
func (f *fakeTrigger) LastError() string             { return "" }
func (f *fakeTrigger) Lag() (int64, bool)            { return f.lag, f.lag >= 0 }

// fakeTimer is a fakeTrigger with a next tick.
type fakeTimer struct {
	fakeTrigger
	next time.Time
}

func (f *fakeTimer) NextTick() time.Time { return f.next }

// flakyStates is a MemoryTriggerStates that fails while down is set.
type flakyStates struct {
	MemoryTriggerStates
	down atomic.Bool
}

var errStoreDown = errors.New("store down")

func (f *flakyStates) PausedTriggers(ctx context.Context) (map[string]bool, error) {
	if f.down.Load() {
		return nil, errStoreDown
	}
	return f.MemoryTriggerStates.PausedTriggers(ctx)
}

func (f *flakyStates) SetTriggerPaused(ctx context.Context, name string, paused bool) error {
	if f.down.Load() {
		return errStoreDown
	}
	return f.MemoryTriggerStates.SetTriggerPaused(ctx, name, paused)
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// node is one node's trigger set over states: triggers a (tenant ta) and
// b (tenant tb).
type node struct {
	set  *triggerSet
	a, b *fakeTrigger
	reg  *prometheus.Registry
}

func newNode(states TriggerStates) *node {
	n := &node{a: &fakeTrigger{name: "a", kind: "kafka", lag: -1}, b: &fakeTrigger{name: "b", kind: "redis", lag: 5}, reg: prometheus.NewRegistry()}
	tenants := map[string]string{"a": "ta", "b": "tb"}
	n.set = newTriggerSet([]trigger{n.a, n.b}, func(name string) string { return tenants[name] }, states, n.reg, quietLog)
	return n
}

func (n *node) gauge(name string) float64 {
	return testutil.ToFloat64(n.set.paused.WithLabelValues(name))
}

// TestTriggerSetAppliesTheStoredStateFirst: a trigger stored as paused is
// paused by load, before it runs; the others run.
func TestTriggerSetAppliesTheStoredStateFirst(t *testing.T) {
	t.Parallel()
	states := &MemoryTriggerStates{}
	if err := states.SetTriggerPaused(context.Background(), "a", true); err != nil {
		t.Fatal(err)
	}
	n := newNode(states)
	n.set.load(context.Background())
	if !n.a.Paused() || n.b.Paused() || n.gauge("a") != 1 || n.gauge("b") != 0 {
		t.Fatalf("after load: a paused %v (gauge %v), b paused %v (gauge %v); want a paused only",
			n.a.Paused(), n.gauge("a"), n.b.Paused(), n.gauge("b"))
	}
}

// TestTriggerSetPauseStoresThenApplies: SetPaused stores the state, then
// pauses the trigger here and answers its view; with the store down it
// changes nothing.
func TestTriggerSetPauseStoresThenApplies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	states := &flakyStates{}
	n := newNode(states)
	n.set.load(ctx)
	got, err := n.set.SetPaused(ctx, "b", true)
	if err != nil {
		t.Fatal(err)
	}
	lag := int64(5)
	want := routes.Trigger{Name: "b", Tenant: "tb", Function: "f", Kind: "redis", State: routes.TriggerPaused, Paused: true, Connected: true, Lag: &lag}
	if got.Name != want.Name || got.Tenant != want.Tenant || got.State != want.State || !got.Paused || got.Lag == nil || *got.Lag != 5 {
		t.Fatalf("SetPaused answered %+v, want %+v", got, want)
	}
	if stored, _ := states.PausedTriggers(ctx); !stored["b"] || !n.b.Paused() || n.gauge("b") != 1 {
		t.Fatalf("stored %v, b paused %v, gauge %v; want b paused everywhere", stored, n.b.Paused(), n.gauge("b"))
	}
	if _, err := n.set.SetPaused(ctx, "nope", true); !errors.Is(err, errNoTrigger) {
		t.Fatalf("SetPaused(nope) = %v, want errNoTrigger", err)
	}

	states.down.Store(true)
	if _, err := n.set.SetPaused(ctx, "b", false); !errors.Is(err, errStoreDown) {
		t.Fatalf("SetPaused with the store down = %v, want its error", err)
	}
	if !n.b.Paused() {
		t.Fatal("b resumed although its state could not be stored")
	}
}

// TestTriggerSetHoldsTriggersWhileTheStateIsUnknown: when the stored state
// cannot be read at start, every trigger is held paused, and the first
// sync that reads it applies it.
func TestTriggerSetHoldsTriggersWhileTheStateIsUnknown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	states := &flakyStates{}
	if err := states.SetTriggerPaused(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	states.down.Store(true)
	n := newNode(states)
	n.set.load(ctx)
	if !n.a.Paused() || !n.b.Paused() {
		t.Fatal("triggers run although the stored state is unknown")
	}
	states.down.Store(false)
	if err := n.set.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !n.a.Paused() || n.b.Paused() || n.gauge("b") != 0 {
		t.Fatalf("after the sync: a paused %v, b paused %v; want a only", n.a.Paused(), n.b.Paused())
	}
}

// TestTriggerSetNodesFollowEachOther: two nodes on one store; a pause
// through one reaches the other's trigger within a few syncs, as does the
// resume.
func TestTriggerSetNodesFollowEachOther(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	states := &MemoryTriggerStates{}
	one, other := newNode(states), newNode(states)
	for _, n := range []*node{one, other} {
		n.set.load(ctx)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { other.set.run(ctx) })

	follows := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(5 * triggerSync)
		for other.a.Paused() != want {
			if time.Now().After(deadline) {
				t.Fatalf("the other node's trigger: paused %v after %v, want %v", other.a.Paused(), 5*triggerSync, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if _, err := one.set.SetPaused(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	follows(true)
	if _, err := one.set.SetPaused(ctx, "a", false); err != nil {
		t.Fatal(err)
	}
	follows(false)
	if other.b.Paused() {
		t.Error("b paused on the other node; only a was")
	}
}

// TestTriggerView: state from paused and connected, lag only when known,
// next tick (UTC) only for timers.
func TestTriggerView(t *testing.T) {
	t.Parallel()
	next := time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	timer := &fakeTimer{fakeTrigger: fakeTrigger{name: "tick", kind: "timer", lag: -1}, next: next}
	v := view(&managed{trigger: timer, tenant: "ta"})
	if v.State != routes.TriggerRunning || v.Lag != nil || v.NextTick == nil || !v.NextTick.Equal(next) || v.NextTick.Location() != time.UTC {
		t.Fatalf("timer view %+v, want running, no lag, next tick %v in UTC", v, next)
	}
	timer.SetPaused(true)
	if v := view(&managed{trigger: timer}); v.State != routes.TriggerPaused {
		t.Fatalf("paused timer's state %q", v.State)
	}
}
