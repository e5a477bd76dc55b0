package async

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ferrySpec describes a Ferry under test.
type ferrySpec struct {
	dir     string // working directory: config, and the store under data/ unless dataDir is set
	dataDir string // store directory; defaults to dir/data
	// tenants, each with API key "key-<name>" and one function "noop".
	// Defaults to one tenant "bench".
	tenants   []string
	httpURL   string // the function's URL: the HTTP backend; empty: the Go backend
	workers   int    // dispatcher.workers, tenants' and functions' max_concurrency
	maxQueued int    // tenants' max_queued
	profile   string // base path of the CPU and allocation profiles; empty: none
	cpuOnly   bool   // profile the CPU only, no allocations
	// redisURL, when set, puts the store on Redis (store.redis) under
	// redisPrefix instead of the embedded store; several Ferry children on
	// the same URL and prefix are one cluster.
	redisURL, redisPrefix string
	// limit is the tenants' and functions' max_concurrency (cluster-wide
	// on Redis); defaults to workers.
	limit int
}

// ferryKey is the API key of a tenant.
func ferryKey(tenant string) string { return "key-" + tenant }

// config renders the Ferry config of s.
func (s ferrySpec) config() string {
	backend := "go: { timeout: 30s }"
	if s.httpURL != "" {
		backend = fmt.Sprintf("http: { url: %q, timeout: 30s }", s.httpURL)
	}
	limit := s.limit
	if limit <= 0 {
		limit = s.workers
	}
	var b strings.Builder
	fmt.Fprintf(&b, "server: { listen: \"127.0.0.1:0\", shutdown_timeout: 10s }\n")
	if s.redisURL != "" {
		fmt.Fprintf(&b, "store: { redis: { url: %q, prefix: %q } }\n", s.redisURL, s.redisPrefix)
	} else {
		fmt.Fprintf(&b, "store: { embedded: { path: %q } }\n", s.dataDir)
	}
	fmt.Fprintf(&b, "dispatcher: { workers: %d }\nlog: { level: warn }\ntenants:\n", s.workers)
	for _, t := range s.tenants {
		fmt.Fprintf(&b, "  - { name: %s, api_keys: [%s], max_concurrency: %d, max_queued: %d }\n", t, ferryKey(t), limit, s.maxQueued)
	}
	b.WriteString("functions:\n")
	for _, t := range s.tenants {
		fmt.Fprintf(&b, "  - { name: noop, tenant: %s, max_concurrency: %d, backend: { %s } }\n", t, limit, backend)
	}
	return b.String()
}

// ferryd is a running Ferry child.
type ferryd struct {
	*proc
	starts  *remoteStarts
	ready   time.Duration // process start → /readyz 200
	profile string
	allocs  bool // an allocation profile was asked for too

	stopOnce sync.Once
	stopErr  error
}

// startFerry writes s's config and starts Ferry on it, returning once it
// is ready (its store loaded).
func startFerry(ctx context.Context, s ferrySpec) (*ferryd, error) {
	if len(s.tenants) == 0 {
		s.tenants = []string{"bench"}
	}
	if s.dataDir == "" {
		s.dataDir = filepath.Join(s.dir, "data")
	}
	cfgPath := filepath.Join(s.dir, "ferry.yaml")
	if err := os.WriteFile(cfgPath, []byte(s.config()), 0o644); err != nil {
		return nil, fmt.Errorf("write ferry config: %w", err)
	}
	args := []string{"-config", cfgPath}
	if s.profile != "" {
		args = append(args, "-cpuprofile", s.profile+".pprof")
		if !s.cpuOnly {
			args = append(args, "-memprofile", s.profile+"-allocs.pprof")
		}
	}
	p, err := startChild(ctx, 10*time.Minute, roleFerry, args...)
	if err != nil {
		return nil, err
	}
	f := &ferryd{proc: p, starts: newRemoteStarts(p.addrs.Stats), profile: s.profile, allocs: !s.cpuOnly}
	err = waitFor(ctx, time.Minute, 5*time.Millisecond, func() (bool, string, error) {
		ok := get(ctx, "http://"+p.addrs.API+"/readyz") == nil
		return ok, "not ready", nil
	})
	if err != nil {
		f.profile = ""
		_ = f.stop()
		return nil, fmt.Errorf("ferry: %w", err)
	}
	f.ready = time.Since(p.started)
	return f, nil
}

// get GETs url and expects 200.
func get(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// succeeded sums ferry_task_outcomes_total{outcome="succeeded"} of
// Ferry's /metrics.
func (f *ferryd) succeeded(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+f.addrs.API+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read ferry metrics: %w", err)
	}
	defer resp.Body.Close()
	var n float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "ferry_task_outcomes_total{") || !strings.Contains(line, `outcome="succeeded"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("read ferry metrics: %q: %w", line, err)
		}
		n += v
	}
	return int64(n), sc.Err()
}

// waitDone waits until n tasks have started (the cheap poll), then until
// Ferry has recorded n as succeeded, and returns when it saw that.
func (f *ferryd) waitDone(ctx context.Context, st starts, n int, timeout time.Duration) (time.Time, error) {
	if err := waitStarts(ctx, st, n, timeout); err != nil {
		return time.Time{}, fmt.Errorf("ferry: %w", err)
	}
	err := waitFor(ctx, time.Minute, 5*time.Millisecond, func() (bool, string, error) {
		c, err := f.succeeded(ctx)
		return c >= int64(n), fmt.Sprintf("%d of %d tasks succeeded", c, n), err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("ferry: %w", err)
	}
	return time.Now(), nil
}

// stop ends Ferry and, when it was profiled, writes `go tool pprof -top`
// of its profiles next to them.
func (f *ferryd) stop() error {
	f.stopOnce.Do(func() {
		f.starts.close()
		f.stopErr = f.proc.stop()
		if f.stopErr == nil && f.profile != "" {
			f.stopErr = pprofTop(f.profile+".pprof", f.profile+".top.txt")
			if f.allocs {
				f.stopErr = errors.Join(f.stopErr,
					pprofTop(f.profile+"-allocs.pprof", f.profile+"-allocs.top.txt", "-sample_index=alloc_space"))
			}
		}
	})
	return f.stopErr
}

// pprofTop writes `go tool pprof -top -nodecount=30` of a profile of this
// binary to out.
func pprofTop(profile, out string, flags ...string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go tool pprof: %w", err)
	}
	args := append([]string{"tool", "pprof", "-top", "-nodecount=30"}, flags...)
	cmd := exec.Command(goBin, append(args, exe, profile)...)
	b, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go tool pprof %s: %w", profile, err)
	}
	return os.WriteFile(out, b, 0o644)
}

// functionServer is a local no-op HTTP function (the HTTP backend's
// target): it records each start and answers 200 with an empty body.
type functionServer struct {
	rec   *recorder
	url   string
	close func()
}

func startFunctionServer() (*functionServer, error) {
	rec := &recorder{}
	addr, closeFn, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.record("", body)
	}))
	if err != nil {
		return nil, fmt.Errorf("function server: %w", err)
	}
	return &functionServer{rec: rec, url: "http://" + addr + "/", close: closeFn}, nil
}
