package cluster

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

// redisServer is a private redis-server process: its own free port and
// data directory, the append-only file fsynced on every write and no RDB
// snapshots, so that a kill -9 loses nothing Redis acknowledged.
type redisServer struct {
	t      *testing.T
	Port   int
	Dir    string
	args   []string
	cmd    *exec.Cmd
	exited chan struct{}
}

// needRedis returns the path of redis-server, or ends the test: a failure
// when CI=true (CI installs Redis: test/brokers/up.sh), a skip otherwise.
func needRedis(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is not on PATH (test/brokers/up.sh installs it): %v", err)
		}
		t.Skipf("redis-server is not on PATH: %v", err)
	}
	return path
}

// startRedis starts redis-server on a free port with a data directory
// under t.TempDir(); extra are more arguments, e.g. "--maxmemory", "20mb".
// It is killed when the test ends.
func startRedis(t *testing.T, extra ...string) *redisServer {
	t.Helper()
	bin := needRedis(t)
	_, portText, _ := net.SplitHostPort(ferrytest.FreeAddr(t))
	port, _ := strconv.Atoi(portText)
	r := &redisServer{t: t, Port: port, Dir: t.TempDir()}
	r.args = append([]string{bin,
		"--port", portText, "--bind", "127.0.0.1", "--dir", r.Dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--logfile", filepath.Join(r.Dir, "redis.log"),
	}, extra...)
	t.Cleanup(func() {
		if r.running() {
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
		if t.Failed() {
			t.Logf("redis log tail:\n%s", r.logTail())
		}
	})
	r.start()
	return r
}

// URL is the store.redis url of the server.
func (r *redisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Addr is host:port.
func (r *redisServer) Addr() string { return fmt.Sprintf("127.0.0.1:%d", r.Port) }

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.args[0], r.args[1:]...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		close(done)
	}(r.cmd, r.exited)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if reply, err := r.Do("PING"); err == nil && reply == "PONG" {
			return
		}
		if !r.running() {
			r.t.Fatalf("redis-server exited during start-up: %v\n%s", r.cmd.ProcessState, r.logTail())
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server not answering PING within 20s:\n%s", r.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *redisServer) running() bool {
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// Kill9 kills redis-server with SIGKILL and waits for it to die.
func (r *redisServer) Kill9() {
	r.t.Helper()
	if !r.running() {
		r.t.Fatal("Kill9: redis-server is not running")
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
}

// Restart starts redis-server again on the same port and directory (it
// loads its append-only file) and waits until it answers PING.
func (r *redisServer) Restart() {
	r.t.Helper()
	if r.running() {
		r.t.Fatal("Restart: redis-server is still running")
	}
	r.start()
}

// Do sends one command in RESP and returns the reply as text: a simple
// string, an integer, or a bulk string (an error reply is an error). It
// needs no client library, so it works the moment the port opens.
func (r *redisServer) Do(args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	rd := bufio.NewReader(conn)
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", fmt.Errorf("redis: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// Info returns one field of INFO (e.g. "used_memory"), or "".
func (r *redisServer) Info(field string) string {
	text, err := r.Do("INFO")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(text, "\r\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			return v
		}
	}
	return ""
}

func (r *redisServer) logTail() string {
	b, err := os.ReadFile(filepath.Join(r.Dir, "redis.log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}
