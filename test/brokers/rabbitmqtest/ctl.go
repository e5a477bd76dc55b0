package rabbitmqtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// rabbitmqctl returns the command that runs rabbitmqctl against the node
// under test: $FERRY_RABBITMQCTL when set (a command line), else the
// repository's test/brokers/rabbitmqctl.sh (the node up.sh started),
// else /usr/sbin/rabbitmqctl -n ferry@localhost.
func rabbitmqctl(ctx context.Context, args ...string) *exec.Cmd {
	if c := strings.Fields(os.Getenv("FERRY_RABBITMQCTL")); len(c) > 0 {
		return exec.CommandContext(ctx, c[0], append(c[1:], args...)...)
	}
	if root, err := repoRoot(); err == nil {
		script := filepath.Join(root, "test", "brokers", "rabbitmqctl.sh")
		if _, err := os.Stat(script); err == nil {
			return exec.CommandContext(ctx, script, args...)
		}
	}
	return exec.CommandContext(ctx, "/usr/sbin/rabbitmqctl", append([]string{"-n", "ferry@localhost"}, args...)...)
}

// repoRoot is the nearest parent of the working directory with a go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// queueCounts asks the broker for the ready and unacknowledged message
// counts of queue (in the default vhost). The queue processes answer
// directly, so the counts are current, not sampled statistics.
func queueCounts(queue string) (ready, unacked int64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	cmd := rabbitmqctl(ctx, "list_queues", "-q", "--no-table-headers", "-p", "/",
		"name", "messages_ready", "messages_unacknowledged")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(stderr.String()))
	}
	for line := range strings.SplitSeq(stdout.String(), "\n") {
		f := strings.Split(strings.TrimRight(line, "\r"), "\t")
		if len(f) != 3 || f[0] != queue {
			continue
		}
		if ready, err = strconv.ParseInt(f[1], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("messages_ready %q: %w", f[1], err)
		}
		if unacked, err = strconv.ParseInt(f[2], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("messages_unacknowledged %q: %w", f[2], err)
		}
		return ready, unacked, nil
	}
	return 0, 0, fmt.Errorf("queue %s not listed by rabbitmqctl list_queues", queue)
}

// KillConnections makes the broker close the connections of the Sources
// on this queue (those named "ferry <queue>"), as a network failure or an
// operator would, and returns how many it closed. Other connections on
// the broker are left alone.
func (q *Topic) KillConnections(t testing.TB) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	out, err := rabbitmqctl(ctx, "list_connections", "-q", "--no-table-headers", "pid", "client_properties").CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqtest: list_connections: %v: %s", err, out)
	}
	want := `{"connection_name","ferry ` + q.name + `"}`
	n := 0
	for line := range strings.SplitSeq(string(out), "\n") {
		pid, props, ok := strings.Cut(line, "\t")
		if !ok || !strings.Contains(props, want) {
			continue
		}
		if out, err := rabbitmqctl(ctx, "close_connection", pid, "rabbitmqtest: KillConnections").CombinedOutput(); err != nil {
			t.Fatalf("rabbitmqtest: close_connection %s: %v: %s", pid, err, out)
		}
		n++
	}
	return n
}
