package redis_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/sinks/redis"
)

var _ sinks.Sink = (*redis.Sink)(nil)

func TestNewClientValidation(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr string // "" = valid
	}{
		{"Valid", "redis://127.0.0.1:6379/0", ""},
		{"ValidTLSWithPassword", "rediss://user:pw@redis.internal:6380/2?dial_timeout=2s", ""},
		{"ValidUnix", "unix:///run/redis.sock?db=1", ""},
		{"Empty", "", "url: required"},
		{"BadScheme", "http://127.0.0.1:6379/0", "invalid URL scheme: http"},
		{"BadDatabase", "redis://127.0.0.1:6379/zero", `invalid database number: "zero"`},
		{"BadOption", "redis://127.0.0.1:6379/0?max_retries=many", "invalid max_retries number"},
		{"UnknownOption", "redis://127.0.0.1:6379/0?colour=blue", "unexpected option: colour"},
		{"Unparsable", "redis://user:s3cret@[::1/0", "missing ']' in host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := redis.NewClient(redis.ClientConfig{URL: tt.url})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("NewClient(%q): %v", tt.url, err)
				}
				if err := c.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("NewClient(%q) succeeded, want an error", tt.url)
			}
			if !strings.HasPrefix(err.Error(), "redis sink config: url: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NewClient(%q) = %q, want an error about the url containing %q", tt.url, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q reveals the password", err)
			}
		})
	}
}

// newClient returns a Client on url, closed in t.Cleanup.
func newClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	c, err := redis.NewClient(redis.ClientConfig{URL: url, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// unreachable returns a URL of a port nothing listens on.
func unreachable(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "redis://" + addr + "/0"
}

// blackHole returns the URL of a server that accepts connections and never
// answers, as a hung Redis; it is closed in t.Cleanup.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "redis://" + l.Addr().String() + "/0"
}

// TestDeliverRefuses: deliveries that cannot work fail at once, without a
// server, and say why.
func TestDeliverRefuses(t *testing.T) {
	c := newClient(t, unreachable(t))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		stream  string
		ctx     context.Context
		o       *sinks.Outcome
		wantErr string
		wantIs  error
	}{
		{"NilOutcome", "s", context.Background(), nil, "nil outcome", nil},
		{"EmptyStream", "", context.Background(), outcome("a"), "empty stream name", nil},
		{"CancelledContext", "s", cancelled, outcome("a"), `deliver a to stream "s"`, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.Sink(tt.stream, 0).Deliver(tt.ctx, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Deliver = %v, want an error containing %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Deliver = %v, want errors.Is %v", err, tt.wantIs)
			}
		})
	}
}

// TestDeliverNoAnswer: Deliver returns at its deadline when Redis does not
// answer (refuses connections, or accepts them and hangs), naming the
// stream and address.
func TestDeliverNoAnswer(t *testing.T) {
	tests := []struct {
		name string
		url  string
	}{
		{"Refused", unreachable(t)},
		{"Hung", blackHole(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const deadline = 300 * time.Millisecond
			s := newClient(t, tt.url).Sink("orders", 0)
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			err := s.Deliver(ctx, outcome("x"))
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("Deliver succeeded")
			}
			if host := strings.TrimSuffix(strings.TrimPrefix(tt.url, "redis://"), "/0"); !strings.Contains(err.Error(), `stream "orders" at `+host) {
				t.Errorf("error %q does not name the stream and %s", err, host)
			}
			if elapsed > deadline+time.Second {
				t.Errorf("Deliver took %v, deadline %v", elapsed, deadline)
			}
			t.Logf("Deliver failed after %v: %v", elapsed.Round(time.Millisecond), err)
		})
	}
}

func TestDeliverAfterClose(t *testing.T) {
	c, err := redis.NewClient(redis.ClientConfig{URL: unreachable(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Sink("s", 0).Deliver(context.Background(), outcome("a")); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Deliver after Close = %v, want a closed-client error", err)
	}
}
