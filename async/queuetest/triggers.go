package queuetest

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"
)

// TriggerStates is what a store keeps of the triggers' paused state
// (ferry.TriggerStates): the embedded and Redis queues implement it beside
// the tasks, and ferry.MemoryTriggerStates in memory.
type TriggerStates interface {
	PausedTriggers(ctx context.Context) (map[string]bool, error)
	SetTriggerPaused(ctx context.Context, name string, paused bool) error
}

// StatesHarness opens the trigger states under test. Open is required;
// Reopen and Second are optional (a store in memory has neither).
type StatesHarness struct {
	// Open opens states on new, empty storage, closed in t.Cleanup.
	Open func(t testing.TB) TriggerStates
	// Reopen closes s and opens its storage again: a restart.
	Reopen func(t testing.TB, s TriggerStates) TriggerStates
	// Second opens another node on the storage of s, which stays open.
	Second func(t testing.TB, s TriggerStates) TriggerStates
}

// TestTriggerStates runs the paused-state contract against the states h
// opens: nothing is paused at first; a pause and a resume are read back
// at once, are idempotent and touch no other trigger, whatever the names;
// the map returned is the caller's; concurrent changes are all kept; the
// state survives a restart (Reopen) and is the same on every node
// (Second).
func TestTriggerStates(t *testing.T, h StatesHarness) {
	t.Run("NothingPausedAtFirst", func(t *testing.T) {
		t.Parallel()
		wantPaused(t, h.Open(t))
	})
	t.Run("PauseAndResume", func(t *testing.T) {
		t.Parallel()
		s := h.Open(t)
		setPaused(t, s, "orders", true)
		wantPaused(t, s, "orders")
		setPaused(t, s, "orders", true) // again: no error, no change
		setPaused(t, s, "refunds", true)
		wantPaused(t, s, "orders", "refunds")
		setPaused(t, s, "orders", false)
		wantPaused(t, s, "refunds")
		setPaused(t, s, "orders", false) // resuming a running trigger
		setPaused(t, s, "never-paused", false)
		wantPaused(t, s, "refunds")
	})
	t.Run("Names", func(t *testing.T) {
		t.Parallel()
		s := h.Open(t)
		// Prefixes of each other, separators of key layouts, spaces,
		// non-ASCII, a long one: each is its own trigger.
		long := fmt.Sprintf("%0300d", 7)
		for _, n := range []string{"ord", "orders", "orders:eu", "orders/eu", "a b", "zählung", "{tag}", long} {
			setPaused(t, s, n, true)
		}
		setPaused(t, s, "orders", false)
		wantPaused(t, s, "ord", "orders:eu", "orders/eu", "a b", "zählung", "{tag}", long)
	})
	t.Run("EmptyNameRefused", func(t *testing.T) {
		t.Parallel()
		s := h.Open(t)
		if err := s.SetTriggerPaused(context.Background(), "", true); err == nil {
			t.Fatal("SetTriggerPaused(\"\") succeeded, want an error")
		}
		wantPaused(t, s)
	})
	t.Run("MapIsTheCallers", func(t *testing.T) {
		t.Parallel()
		s := h.Open(t)
		setPaused(t, s, "orders", true)
		got := paused(t, s)
		delete(got, "orders")
		got["refunds"] = true
		wantPaused(t, s, "orders")
	})
	t.Run("ConcurrentChanges", func(t *testing.T) {
		t.Parallel()
		s := h.Open(t)
		const n = 32
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i := range n {
			wg.Go(func() {
				name := fmt.Sprintf("t%02d", i)
				errs <- s.SetTriggerPaused(context.Background(), name, true)
				if i%2 == 1 {
					errs <- s.SetTriggerPaused(context.Background(), name, false)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("SetTriggerPaused: %v", err)
			}
		}
		var want []string
		for i := 0; i < n; i += 2 {
			want = append(want, fmt.Sprintf("t%02d", i))
		}
		wantPaused(t, s, want...)
	})
	t.Run("SurvivesRestart", func(t *testing.T) {
		if h.Reopen == nil {
			t.Skip("the store keeps no state across restarts")
		}
		t.Parallel()
		s := h.Open(t)
		setPaused(t, s, "orders", true)
		setPaused(t, s, "refunds", true)
		setPaused(t, s, "refunds", false)
		s = h.Reopen(t, s)
		wantPaused(t, s, "orders")
		setPaused(t, s, "orders", false)
		s = h.Reopen(t, s)
		wantPaused(t, s)
	})
	t.Run("SharedByNodes", func(t *testing.T) {
		if h.Second == nil {
			t.Skip("the store has one node")
		}
		t.Parallel()
		a := h.Open(t)
		b := h.Second(t, a)
		setPaused(t, a, "orders", true)
		wantPaused(t, b, "orders")
		setPaused(t, b, "refunds", true)
		setPaused(t, b, "orders", false)
		wantPaused(t, a, "refunds")
	})
}

// paused reads the paused triggers of s.
func paused(t *testing.T, s TriggerStates) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := s.PausedTriggers(ctx)
	if err != nil {
		t.Fatalf("PausedTriggers: %v", err)
	}
	return got
}

// wantPaused checks that exactly names are paused on s.
func wantPaused(t *testing.T, s TriggerStates, names ...string) {
	t.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	if got := paused(t, s); !maps.Equal(got, want) {
		t.Fatalf("paused triggers = %v, want %v", got, want)
	}
}

// setPaused sets the state of name on s.
func setPaused(t *testing.T, s TriggerStates, name string, p bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.SetTriggerPaused(ctx, name, p); err != nil {
		t.Fatalf("SetTriggerPaused(%q, %v): %v", name, p, err)
	}
}
