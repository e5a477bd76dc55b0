package routes

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/wire"
)

// fakeRates is a shared admission store: it answers wait or err and
// records the lanes asked.
type fakeRates struct {
	wait  time.Duration
	err   error
	lanes []wire.Lane
}

func (f *fakeRates) Take(_ context.Context, lane wire.Lane) (time.Duration, error) {
	f.lanes = append(f.lanes, lane)
	return f.wait, f.err
}

func admissionConfig(rate float64) *config.Config {
	return &config.Config{
		Tenants:   []config.Tenant{{Name: "t", Rate: rate, Burst: 1}},
		Functions: []config.Function{{Name: "f", Tenant: "t"}},
	}
}

func TestAdmission(t *testing.T) {
	t.Parallel()
	t.Run("NoRateNoCheck", func(t *testing.T) {
		if admit := Admission(admissionConfig(0), &fakeRates{}, nil); admit != nil {
			t.Fatal("admission checks submissions though no rate is set")
		}
	})
	t.Run("InMemory", func(t *testing.T) {
		admit := Admission(admissionConfig(1), nil, nil)
		if w := admit("t", "f"); w != 0 {
			t.Fatalf("first submission waits %v", w)
		}
		if w := admit("t", "f"); w <= 0 {
			t.Fatal("second submission at 1/s, burst 1, admitted")
		}
	})
	t.Run("Shared", func(t *testing.T) {
		store := &fakeRates{wait: 300 * time.Millisecond}
		admit := Admission(admissionConfig(1), store, nil)
		if w := admit("t", "f"); w != 300*time.Millisecond {
			t.Fatalf("admit = %v, want the shared store's wait", w)
		}
		if len(store.lanes) != 1 || store.lanes[0] != (wire.Lane{Tenant: "t", Function: "f"}) {
			t.Fatalf("store asked for %v", store.lanes)
		}
	})
	t.Run("SharedDownAdmits", func(t *testing.T) {
		var logs bytes.Buffer
		store := &fakeRates{err: errors.New("connection refused")}
		admit := Admission(admissionConfig(1), store, slog.New(slog.NewTextHandler(&logs, nil)))
		for range 3 {
			if w := admit("t", "f"); w != 0 {
				t.Fatalf("admit with the store down = %v, want 0 (admitted)", w)
			}
		}
		if n := strings.Count(logs.String(), "admission rate store unavailable"); n != 1 {
			t.Errorf("%d warnings for 3 failures within a second, want 1:\n%s", n, logs.String())
		}
	})
}
