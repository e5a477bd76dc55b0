package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

// serveFails runs `ferry serve` on a config with store and expects it to
// refuse to start: exit status 1 within 30 s and want in its output.
func serveFails(t *testing.T, store, want string) {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf("server: { listen: %q }\n%s\ntenants: [ { name: acme, api_keys: [k] } ]\n"+
		"functions: [ { name: f, tenant: acme, backend: { http: { url: \"http://127.0.0.1:1/\" } } } ]\n", ferrytest.FreeAddr(t), store)
	path := filepath.Join(dir, "ferry.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, ferrytest.Binary(t), "serve", "-c", path)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("ferry serve: %v (status %v), want exit status 1:\n%s", err, cmd.ProcessState, out.String())
	}
	if !strings.Contains(out.String(), want) {
		t.Fatalf("ferry serve said:\n%s\nwant it to say %q", out.String(), want)
	}
	t.Logf("refused: %s", strings.TrimSpace(lastLine(out.String())))
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestStartupRefusals: a Redis Ferry cannot keep its promises on is a
// clear error at start, naming what is wrong, never a node that serves.
func TestStartupRefusals(t *testing.T) {
	t.Run("Unreachable", func(t *testing.T) {
		serveFails(t, fmt.Sprintf("store: { redis: { url: \"redis://%s/0\" } }", ferrytest.FreeAddr(t)), "cannot reach Redis")
	})
	t.Run("EvictingPolicy", func(t *testing.T) {
		r := startRedis(t, "--maxmemory-policy", "allkeys-lru")
		serveFails(t, fmt.Sprintf("store: { redis: { url: %q } }", r.URL()), `maxmemory-policy is "allkeys-lru"`)
	})
	t.Run("NoScripts", func(t *testing.T) {
		r := startRedis(t, "--rename-command", "EVALSHA", "", "--rename-command", "EVAL", "", "--rename-command", "SCRIPT", "")
		serveFails(t, fmt.Sprintf("store: { redis: { url: %q } }", r.URL()), "Redis refuses Lua scripts")
	})
	t.Run("OtherFormatVersion", func(t *testing.T) {
		r := startRedis(t)
		if _, err := r.Do("SET", "{old}:version", "0"); err != nil {
			t.Fatal(err)
		}
		serveFails(t, fmt.Sprintf("store: { redis: { url: %q, prefix: old } }", r.URL()), `prefix "old" holds Ferry store format "0"`)
	})
}

// TestSentinel: store.redis.sentinel finds the master through a real
// Sentinel (redis-server --sentinel) and serves tasks on it.
func TestSentinel(t *testing.T) {
	master := startRedis(t)
	conf := filepath.Join(t.TempDir(), "sentinel.conf")
	sentinelAddr := ferrytest.FreeAddr(t)
	port := sentinelAddr[strings.LastIndexByte(sentinelAddr, ':')+1:]
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("port %s\nbind 127.0.0.1\nsentinel monitor mymaster 127.0.0.1 %d 1\n", port, master.Port)), 0o600); err != nil {
		t.Fatal(err)
	}
	sentinel := exec.Command(needRedis(t), conf, "--sentinel")
	if err := sentinel.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sentinel.Process.Kill(); _ = sentinel.Wait() })

	b := newBackend(t)
	p := ferrytest.StartConfig(t, fmt.Sprintf(`server: { listen: "{{listen}}" }
store: { redis: { sentinel: { master: mymaster, addrs: [%q] }, prefix: viasentinel } }
tenants: [ { name: acme, api_keys: [k] } ]
functions: [ { name: f, tenant: acme, backend: { http: { url: %q } } } ]
`, sentinelAddr, b.URL()+"/n1/f"))
	c := &cluster{t: t, Backend: b, Nodes: []*node{{Proc: p, Name: "n1"}}, client: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(c.client.CloseIdleConnections)
	l := newLedger()
	(&submitter{c: c, Key: "k", Fn: "f", Nodes: c.Nodes}).Many(l, 0, 20, 4)
	views := c.waitFinal(t, c.Nodes, "k", l.IDs(nil), 30*time.Second)
	n := tally(t, l, views, b.Calls(nil))
	t.Logf("through Sentinel: %s", n)
	if n.N != 20 || n.lost != 0 {
		t.Fatalf("through Sentinel: %s; want 20 tasks run, none lost", n)
	}
	if keys, err := master.Do("EXISTS", "{viasentinel}:version"); err != nil || keys != "1" {
		t.Fatalf("the master Sentinel names holds no Ferry keys (EXISTS = %q, %v)", keys, err)
	}
}
