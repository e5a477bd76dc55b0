package conformance_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
)

// profilePath is where run's Ferry variant with batch on broker records
// its CPU profile: <$FERRY_BENCH_PROFILES>/pollers-<broker>-batch<k>.pprof
// for run 1; "" (no profile) for later runs or without the env var.
func profilePath(run int, broker string, batch int) string {
	dir := os.Getenv("FERRY_BENCH_PROFILES")
	if dir == "" || run != 1 {
		return ""
	}
	return filepath.Join(dir, fmt.Sprintf("pollers-%s-batch%d.pprof", broker, batch))
}

// startProfile starts a CPU profile of the process into path (nothing
// when path is ""). The returned stop ends it (cheap, idempotent); when b
// ends, after the measurement, the top 30 frames (`go tool pprof -top
// -nodecount=30` on the test binary) are written to the same path with
// .top.txt instead of .pprof.
func startProfile(b *testing.B, path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		b.Fatalf("FERRY_BENCH_PROFILES: %v", err)
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatalf("FERRY_BENCH_PROFILES: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatalf("cpu profile: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				b.Errorf("cpu profile: %v", err)
			}
		})
	}
	b.Cleanup(func() {
		stop()
		top := strings.TrimSuffix(path, ".pprof") + ".top.txt"
		if err := writeTop(path, top); err != nil {
			b.Logf("pprof -top of %s: %v", path, err) // the profile itself is there
			return
		}
		progress("pollers: CPU profile %s (top frames in %s)", path, top)
	})
	return stop
}

// writeTop runs `go tool pprof -top -nodecount=30 <test binary> profile`
// into out. go test puts its Go's bin directory first in PATH.
func writeTop(profile, out string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "tool", "pprof", "-top", "-nodecount=30", exe, profile)
	text, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = strings.TrimSpace(string(ee.Stderr))
		}
		return fmt.Errorf("%w: %s", err, stderr)
	}
	return os.WriteFile(out, text, 0o644)
}
