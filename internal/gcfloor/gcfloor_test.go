package gcfloor

import (
	"os"
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name        string
		live, floor uint64
		want        int
	}{
		{"small live heap: goal is the floor", 16 * mib, 64 * mib, 300},
		{"live heap at half the floor", 32 * mib, 64 * mib, 100},
		{"live heap above the floor", 200 * mib, 64 * mib, 100},
		{"unknown live heap counts as 1 MiB", 0, 64 * mib, 6300},
		{"bounded when the floor dwarfs the heap", 1 * mib, 1 << 40, maxGCPercent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := gcPercentFor(tt.live, tt.floor); got != tt.want {
				t.Errorf("gcPercentFor(%d, %d) = %d, want %d", tt.live, tt.floor, got, tt.want)
			}
		})
	}
}

// gogc reads the GOGC in effect.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}

// unsetGOGC clears GOGC for the test and restores it after.
func unsetGOGC(t *testing.T) {
	t.Setenv("GOGC", "")
	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
}

// TestHeapFloorFollowsTheLiveHeap: GOGC is raised at start, retuned after
// each collection as the live heap grows, and restored when the last
// Server stops; with GOGC in the environment nothing changes.
func TestHeapFloorFollowsTheLiveHeap(t *testing.T) {
	unsetGOGC(t)
	before := gogc()
	const floor = 256 << 20

	stop1, on := Start(floor)
	if !on {
		t.Fatal("floor not applied with GOGC unset")
	}
	stop2, _ := Start(floor / 2) // a second Server shares it
	runtime.GC()
	small := gogc()
	if small <= 300 {
		t.Fatalf("GOGC with a small live heap = %d, want well above 300 for a %d MiB floor", small, floor>>20)
	}

	// Hold 64 MiB live: after the next collections the goal follows, GOGC
	// about 300 (floor/live − 1).
	hold := make([][]byte, 64)
	for i := range hold {
		hold[i] = make([]byte, 1<<20)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		if p := gogc(); p <= 320 && p >= 250 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC with 64 MiB live = %d, want about 300", gogc())
		}
		time.Sleep(10 * time.Millisecond) // the cleanup runs after the collection
	}
	runtime.KeepAlive(hold)

	stop1()
	stop1() // idempotent
	if p := gogc(); p == before {
		t.Fatalf("GOGC restored to %d while a Server still runs", p)
	}
	stop2()
	if p := gogc(); p != before {
		t.Fatalf("GOGC after the last stop = %d, want %d as before", p, before)
	}
	// A pending cleanup of the stopped floor must not retune. Its absence
	// has no condition to poll: give it time to misbehave.
	runtime.GC()
	time.Sleep(20 * time.Millisecond)
	if p := gogc(); p != before {
		t.Fatalf("GOGC retuned after stop: %d, want %d", p, before)
	}

	t.Setenv("GOGC", "150")
	stop, on := Start(floor)
	defer stop()
	if on || gogc() != before {
		t.Fatalf("floor applied although GOGC is set (on=%v, GOGC %d)", on, gogc())
	}
	if _, on := Start(0); on {
		t.Fatal("a zero floor was applied")
	}
}
