// Package brokers gives tests the addresses of the real brokers that
// test/brokers/up.sh runs (Kafka, RocketMQ, RabbitMQ, Redis), checks that
// they answer, and stops / starts one of them for the broker-restart tests.
//
// Tests never skip because a broker is missing: `make test` runs up.sh
// first, so a missing broker is a broken setup and fails the test.
package brokers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Broker names, as up.sh and down.sh take them.
const (
	Kafka    = "kafka"
	RocketMQ = "rocketmq"
	RabbitMQ = "rabbitmq"
	Redis    = "redis"
)

// All lists every broker name.
var All = []string{Kafka, RocketMQ, RabbitMQ, Redis}

var defaults = map[string]struct{ env, addr string }{
	Kafka:    {"FERRY_KAFKA", "127.0.0.1:9092"},
	RocketMQ: {"FERRY_ROCKETMQ", "127.0.0.1:9876"},
	RabbitMQ: {"FERRY_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672/"},
	Redis:    {"FERRY_REDIS", "redis://127.0.0.1:6379/0"},
}

// Addr returns the address tests use for a broker: the environment variable
// (FERRY_KAFKA, FERRY_ROCKETMQ, FERRY_RABBITMQ, FERRY_REDIS) when set, else
// the pinned default: "127.0.0.1:9092" (Kafka bootstrap), "127.0.0.1:9876"
// (RocketMQ name server), "amqp://guest:guest@127.0.0.1:5672/" and
// "redis://127.0.0.1:6379/0". It panics on an unknown name.
func Addr(name string) string {
	d, ok := defaults[name]
	if !ok {
		panic(fmt.Sprintf("brokers: unknown broker %q (want one of %v)", name, All))
	}
	if v := strings.TrimSpace(os.Getenv(d.env)); v != "" {
		return v
	}
	return d.addr
}

// RocketMQBrokerAddr is the RocketMQ broker's own address (FERRY_ROCKETMQ_BROKER,
// default 127.0.0.1:10911), for admin calls that create topics on it.
func RocketMQBrokerAddr() string {
	if v := strings.TrimSpace(os.Getenv("FERRY_ROCKETMQ_BROKER")); v != "" {
		return v
	}
	return "127.0.0.1:10911"
}

// dialAddrs lists the host:port addresses that must accept connections for name.
func dialAddrs(name string) ([]string, error) {
	a := Addr(name)
	switch name {
	case Kafka:
		var out []string
		for _, s := range strings.Split(a, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out[:min(len(out), 1)], nil // one bootstrap server is enough
	case RocketMQ:
		ns := strings.TrimSpace(strings.Split(strings.TrimSuffix(a, ";"), ";")[0])
		return []string{ns, RocketMQBrokerAddr()}, nil
	default: // amqp:// or redis:// URL
		u, err := url.Parse(a)
		if err != nil {
			return nil, fmt.Errorf("%s address %q: %w", name, a, err)
		}
		port := map[string]string{"amqp": "5672", "amqps": "5671", "redis": "6379", "rediss": "6379"}[u.Scheme]
		if u.Port() != "" {
			port = u.Port()
		}
		if u.Hostname() == "" || port == "" {
			return nil, fmt.Errorf("%s address %q: no host:port", name, a)
		}
		return []string{net.JoinHostPort(u.Hostname(), port)}, nil
	}
}

// check dials every address of name once.
func check(name string, timeout time.Duration) error {
	addrs, err := dialAddrs(name)
	if err != nil {
		return err
	}
	if len(addrs) == 0 {
		return fmt.Errorf("%s: empty address", name)
	}
	for _, a := range addrs {
		c, err := net.DialTimeout("tcp", a, timeout)
		if err != nil {
			return fmt.Errorf("%s at %s: %w", name, a, err)
		}
		c.Close()
	}
	return nil
}

// Require fails the test (t.Fatalf, never Skip) unless every named broker
// (default: all four) accepts TCP connections at its address.
func Require(t testing.TB, names ...string) {
	t.Helper()
	if len(names) == 0 {
		names = All
	}
	var errs []string
	for _, n := range names {
		if err := check(n, 2*time.Second); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		t.Fatalf("brokers not reachable: %s\nstart them with: %s %s",
			strings.Join(errs, "; "), scriptPathOrName("up.sh"), strings.Join(names, " "))
	}
}

// Stop stops one broker with down.sh (its data is kept) and fails the test
// unless its port is closed afterwards. A broker that up.sh did not start
// (it reused one already running) cannot be stopped: the test fails.
func Stop(t testing.TB, name string) {
	t.Helper()
	mustKnow(t, name)
	runScript(t, "down.sh", name)
	deadline := time.Now().Add(30 * time.Second)
	for check(name, time.Second) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("brokers: %s still answers after down.sh %s: it was not started by up.sh, so the test cannot stop it", name, name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Start starts one broker with up.sh (a no-op when it already runs), waits
// until it is ready and fails the test on error.
func Start(t testing.TB, name string) {
	t.Helper()
	mustKnow(t, name)
	runScript(t, "up.sh", name)
	Require(t, name)
}

// Restart stops and starts one broker, keeping its data.
func Restart(t testing.TB, name string) {
	t.Helper()
	Stop(t, name)
	Start(t, name)
}

func mustKnow(t testing.TB, name string) {
	t.Helper()
	if _, ok := defaults[name]; !ok {
		t.Fatalf("brokers: unknown broker %q (want one of %v)", name, All)
	}
}

// runScript runs test/brokers/<script> args... and fails the test with its
// output on error. Output goes to a file, not a pipe: the brokers up.sh
// launches must never hold a pipe of ours open.
func runScript(t testing.TB, script string, args ...string) {
	t.Helper()
	path, err := scriptPath(script)
	if err != nil {
		t.Fatalf("brokers: %v", err)
	}
	out, err := os.CreateTemp("", "ferry-brokers-*.log")
	if err != nil {
		t.Fatalf("brokers: %v", err)
	}
	defer os.Remove(out.Name())
	defer out.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{path}, args...)...)
	cmd.Stdin = nil
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	runErr := cmd.Run()
	text, _ := os.ReadFile(out.Name())
	text = bytes.TrimSpace(text)
	if runErr != nil {
		t.Fatalf("brokers: %s %s failed after %s: %v\n%s", path, strings.Join(args, " "),
			time.Since(start).Round(time.Millisecond), runErr, text)
	}
	t.Logf("%s %s (%s): %s", script, strings.Join(args, " "), time.Since(start).Round(time.Millisecond), text)
}

// scriptPath finds up.sh / down.sh next to this source file; when the binary
// was built with -trimpath, it searches upward from the working directory for
// the module root instead.
func scriptPath(script string) (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		p := filepath.Join(filepath.Dir(file), script)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "test", "brokers", script)
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find test/brokers/" + script + " (neither next to brokers.go nor under the module root)")
		}
		dir = parent
	}
}

func scriptPathOrName(script string) string {
	if p, err := scriptPath(script); err == nil {
		return p
	}
	return "test/brokers/" + script
}
