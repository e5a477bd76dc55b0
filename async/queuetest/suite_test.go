package queuetest

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/embedded"
)

func TestClock(t *testing.T) {
	t.Parallel()
	var c Clock
	if want := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC); !c.Now().Equal(want) || c.Now().Location() != time.UTC {
		t.Fatalf("zero Clock reads %v, want %v", c.Now(), want)
	}
	c.Advance(1500 * time.Millisecond)
	c.Advance(0)
	if got := c.Now().Sub(start); got != 1500*time.Millisecond {
		t.Fatalf("advanced by %v", got)
	}
	for _, tc := range []struct {
		name string
		d    time.Duration
	}{
		{"SubMillisecond", time.Microsecond},
		{"Fraction", 1500 * time.Microsecond},
		{"Negative", -time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), "whole number of milliseconds") {
					t.Fatalf("Advance(%v) recovered %v, want a panic", tc.d, r)
				}
			}()
			c.Advance(tc.d)
		})
	}
}

func TestSameTime(t *testing.T) {
	t.Parallel()
	at := start.Add(time.Hour)
	for _, tc := range []struct {
		name string
		a, b time.Time
		want bool
	}{
		{"Equal", at, at, true},
		{"OtherZone", at, at.In(time.FixedZone("X", 3600)), true},
		{"WithinSlack", at, at.Add(-timeSlack), true},
		{"PastSlack", at, at.Add(timeSlack + time.Millisecond), false},
		{"BothZero", time.Time{}, time.Time{}, true},
		{"OneZero", at, time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sameTime(tc.a, tc.b); got != tc.want {
				t.Fatalf("sameTime(%v, %v) = %v", tc.a, tc.b, got)
			}
		})
	}
}

// TestTwoNodeScenarios runs the scenarios that use Harness.Second on the
// embedded store, with the one queue standing for both nodes (Pebble
// locks its directory, so there is no second one): it checks that the
// scenarios' code holds together, which the embedded store's own suite
// run, without Second, does not. A shared store runs them for real.
func TestTwoNodeScenarios(t *testing.T) {
	t.Parallel()
	h := Harness{
		Open: func(t testing.TB, c *Clock) async.Queue {
			q, err := embedded.Open(t.TempDir(), embedded.Options{
				Retention: Retention, IdempotencyTTL: IdempotencyTTL, Now: c.Now,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = q.Close() })
			return q
		},
		Reopen: func(t testing.TB, q async.Queue) async.Queue {
			t.Fatal("the two-node scenarios do not restart")
			return nil
		},
		Upkeep: func(t testing.TB, q async.Queue) {
			if err := q.(*embedded.Queue).Upkeep(context.Background()); err != nil {
				t.Errorf("Upkeep: %v", err)
			}
		},
		Second: func(t testing.TB, q async.Queue) async.Queue { return q },
	}
	for _, sc := range twoNodeScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.run(t, setup(t, h))
		})
	}
	t.Run("ConcurrentUpkeepRequeuesOnce", func(t *testing.T) {
		t.Parallel()
		concurrentUpkeep(t, setup(t, h))
	})
}
