package embedded

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/queuetest"
)

// Below the reserve Enqueue is refused with ErrFull while a leased task
// still completes; the figure is measured again, so space coming back is
// seen (here: the reserve is lowered, as a freed disk would do).
func TestReserveRefusesEnqueueOnly(t *testing.T) {
	b := newBundle(t, &queuetest.Clock{})
	q := open(t, b)
	mustEnqueue(t, q, newTask(b, "a", "t1", "f"))
	leased := mustLease(t, q)

	q.space.reserve = Reserve{Percent: 99.999} // no disk here is that empty
	q.space.last.Store(0)                      // stale: measure now
	if !q.Full() {
		t.Fatal("Full() = false under a 99.999% reserve")
	}
	_, _, err := q.Enqueue(context.Background(), newTask(b, "b", "t1", "f"), 0)
	if !errors.Is(err, async.ErrFull) || !errors.Is(err, async.ErrUnavailable) {
		t.Fatalf("Enqueue below the reserve: %v, want ErrFull", err)
	}
	if _, err := q.Complete(context.Background(), leased.ID, leased.Lease, async.Completion{Status: async.StatusSucceeded, Attempted: true}); err != nil {
		t.Fatalf("Complete below the reserve: %v", err)
	}
	if free, reserve := q.FreeBytes(); free == 0 || reserve <= free {
		t.Errorf("FreeBytes = %d, %d; want some free space below the reserve", free, reserve)
	}

	q.space.reserve = Reserve{Off: true}
	q.space.last.Store(0)
	if q.Full() {
		t.Fatal("Full() = true with the reserve off")
	}
	mustEnqueue(t, q, newTask(b, "b", "t1", "f"))
}

func TestReserveBytes(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		r     Reserve
		total uint64
		want  uint64
	}{
		{Reserve{}, 100 * gib, 256 << 20},       // 5 % is more: 256 MiB
		{Reserve{}, 1 * gib, gib * 5 / 100},     // 5 % is less
		{Reserve{Bytes: 8 << 20}, gib, 8 << 20}, // as given
		{Reserve{Percent: 10}, gib, gib / 10},
		{Reserve{Off: true}, gib, 0},
	}
	for _, tt := range tests {
		if got := tt.r.bytes(tt.total); got != tt.want {
			t.Errorf("%+v.bytes(%d) = %d, want %d", tt.r, tt.total, got, tt.want)
		}
	}
}

// A directory with store files but no valid CURRENT is refused before
// Pebble touches it.
func TestCheckDir(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string // "" = accepted
	}{
		{"Missing", nil, ""},
		{"Empty", map[string]string{}, ""},
		{"Sound", map[string]string{"CURRENT": "MANIFEST-000005\n", "MANIFEST-000005": "x", "000004.log": "x"}, ""},
		{"NoCurrent", map[string]string{"MANIFEST-000005": "x", "000007.sst": "x"}, "no CURRENT file"},
		{"OnlyWAL", map[string]string{"000004.log": "x"}, "no CURRENT file"},
		{"CurrentNamesNothing", map[string]string{"CURRENT": "MANIFEST-000009\n", "000007.sst": "x"}, `CURRENT names "MANIFEST-000009"`},
		{"EmptyManifest", map[string]string{"CURRENT": "MANIFEST-000005\n", "MANIFEST-000005": ""}, "not a non-empty MANIFEST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			if tt.files != nil {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for name, body := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := checkDir(dir)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("checkDir: %v", err)
			case tt.wantErr != "" && (err == nil || !errors.Is(err, ErrDamagedDir) || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), dir)):
				t.Fatalf("checkDir = %v, want ErrDamagedDir naming %s and %q", err, dir, tt.wantErr)
			}
		})
	}
}
