package cluster

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

// spec describes a cluster.
type spec struct {
	// Nodes is how many `ferry serve` processes share the store.
	Nodes int
	// Body is the config after the server, store and log sections
	// (dispatcher, tenants, functions). {{backend}} stands for the
	// backend's URL followed by /<node name>, so a function's url is
	// written "{{backend}}/fn" and every call names its node.
	Body string
	// Redis are more redis-server arguments (e.g. --maxmemory 20mb).
	Redis []string
	// Env adds environment variables ("NAME=value") to the node of that
	// index (0-based).
	Env map[int][]string
	// Embedded runs the nodes on store.embedded instead of Redis: only
	// meaningful with one node; the harness's own test uses it.
	Embedded bool
}

// cluster is a running cluster: its Redis, its nodes and the backend
// they call.
type cluster struct {
	t       *testing.T
	Redis   *redisServer // nil with spec.Embedded
	Backend *backend
	Nodes   []*node
	Prefix  string // store.redis.prefix
	client  *http.Client
}

// node is one `ferry serve` process (and its restarts).
type node struct {
	*ferrytest.Proc
	Name   string // "n1", "n2", ...
	Index  int    // in cluster.Nodes
	c      *cluster
	frozen bool
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// newCluster starts a private redis-server, the backend and spec.Nodes
// nodes, and waits until every node's /readyz answers 200. Everything
// is stopped when the test ends (nodes first, then Redis and the backend).
func newCluster(t *testing.T, s spec) *cluster {
	t.Helper()
	c := &cluster{
		t: t, Backend: newBackend(t),
		Prefix: "ferry-" + strings.ToLower(unsafeName.ReplaceAllString(t.Name(), "-")),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
	}
	t.Cleanup(c.client.CloseIdleConnections)
	store := `store: { embedded: { path: "{{data}}" } }`
	if !s.Embedded {
		c.Redis = startRedis(t, s.Redis...)
		store = fmt.Sprintf("store:\n  redis:\n    url: %s\n    prefix: %s", c.Redis.URL(), c.Prefix)
	}
	for i := range s.Nodes {
		name := "n" + strconv.Itoa(i+1)
		cfg := "server: { listen: \"{{listen}}\", shutdown_timeout: 10s }\n" + store + "\nlog: { level: info }\n" +
			strings.ReplaceAll(s.Body, "{{backend}}", c.Backend.URL()+"/"+name)
		n := &node{Name: name, Index: i, c: c}
		n.Proc = ferrytest.StartConfigEnv(t, cfg, s.Env[i]...)
		c.Nodes = append(c.Nodes, n)
		t.Cleanup(func() { // runs just before the node's own cleanup prints its log tail
			if t.Failed() {
				t.Logf("node %s (%s, %s): log %s", n.Name, n.Addr, strings.Join(s.Env[i], " "), n.LogPath())
			}
		})
	}
	return c
}

// Live returns the nodes running and not frozen, in order.
func (c *cluster) Live() []*node {
	var out []*node
	for _, n := range c.Nodes {
		if n.Running() && !n.frozen {
			out = append(out, n)
		}
	}
	return out
}

// Except returns the nodes other than n.
func (c *cluster) Except(n *node) []*node {
	var out []*node
	for _, o := range c.Nodes {
		if o != n {
			out = append(out, o)
		}
	}
	return out
}

// Freeze stops the node with SIGSTOP: its process and its sockets stay,
// nothing in it runs (not its timers either) until Thaw.
func (n *node) Freeze() {
	n.c.t.Helper()
	n.Signal(syscall.SIGSTOP)
	n.frozen = true
	// The signal is delivered asynchronously: wait until every thread
	// has stopped, so that nothing the test does next is served.
	if !waitFor(5*time.Second, func() bool { return n.stopped(true) }) {
		n.c.t.Fatalf("%s: not stopped within 5s of SIGSTOP", n.Name)
	}
}

// Thaw resumes a frozen node with SIGCONT.
func (n *node) Thaw() {
	n.c.t.Helper()
	n.Signal(syscall.SIGCONT)
	n.frozen = false
	if !waitFor(5*time.Second, func() bool { return n.stopped(false) }) {
		n.c.t.Fatalf("%s: still stopped 5s after SIGCONT", n.Name)
	}
}

// stopped reports whether every thread of the node's process is in state
// T (stopped), or, with want false, none is.
func (n *node) stopped(want bool) bool {
	dir := fmt.Sprintf("/proc/%d/task", n.Pid())
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		if err != nil {
			return false
		}
		// The state follows the command name in parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 || i+2 >= len(stat) {
			return false
		}
		if (stat[i+2] == 'T') != want {
			return false
		}
	}
	return true
}

// Ready returns the status /readyz answers now (0 when it does not
// answer within 2 s).
func (n *node) Ready() int {
	cl := http.Client{Timeout: 2 * time.Second}
	resp, err := cl.Get(n.URL("/readyz"))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Metric sums the samples of a Prometheus metric whose labels contain
// every one of labels (each `name="value"`), read from the node's
// /metrics; -1 when /metrics cannot be read.
func (n *node) Metric(name string, labels ...string) float64 {
	resp, err := n.c.client.Get(n.URL("/metrics"))
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}
		fields := strings.Fields(line)
		if v, err := strconv.ParseFloat(fields[len(fields)-1], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// waitFor polls cond every 10 ms until it holds; false after timeout
// (the caller decides whether that fails the test).
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
