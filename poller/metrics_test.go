package poller_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/wire"
)

// scriptSource answers each Connect and Read with the next error the test
// sends (nil: connected; Read then returns no messages).
type scriptSource struct {
	connects chan error
	reads    chan error
}

func (s *scriptSource) Connect(ctx context.Context) error {
	select {
	case err := <-s.connects:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *scriptSource) Read(ctx context.Context) ([]*poller.Message, error) {
	select {
	case err := <-s.reads:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *scriptSource) Close(context.Context) error { return nil }

// TestConnectionMetrics: ferry_trigger_connected follows the source's
// connection, and ferry_trigger_errors_total counts failed connects, lost
// connections and other read errors (a rejoin is no error).
func TestConnectionMetrics(t *testing.T) {
	src := &scriptSource{connects: make(chan error), reads: make(chan error)}
	fn := &dispatcher.Function{Lane: wire.Lane{Tenant: "t", Function: "f"}, Backend: ok(&calls{}),
		Retry: dispatcher.RetryPolicy{MaxAttempts: 1, InitialInterval: time.Millisecond, MaxInterval: time.Millisecond, Multiplier: 1}}
	d, err := dispatcher.New(dispatcher.Config{Functions: []*dispatcher.Function{fn}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p, err := poller.New(poller.Config{Name: "trig", Source: src, Dispatcher: d, Function: fn, Metrics: poller.NewMetrics(reg), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	// want waits until the two metrics read connected and the error counts
	// connect, connection_lost, read.
	want := func(step string, connected, connect, lost, read int) {
		t.Helper()
		exp := fmt.Sprintf(`# HELP ferry_trigger_connected 1 while the trigger's source is connected to its broker, 0 before its first connect, while it reconnects and after it stopped.
# TYPE ferry_trigger_connected gauge
ferry_trigger_connected{trigger="trig"} %d
# HELP ferry_trigger_errors_total Trigger source errors by kind: connect (a connect failed), connection_lost (a read found the connection gone), read (a read failed otherwise).
# TYPE ferry_trigger_errors_total counter
ferry_trigger_errors_total{kind="connect",trigger="trig"} %d
ferry_trigger_errors_total{kind="connection_lost",trigger="trig"} %d
ferry_trigger_errors_total{kind="read",trigger="trig"} %d
`, connected, connect, lost, read)
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := testutil.GatherAndCompare(reg, strings.NewReader(exp), "ferry_trigger_connected", "ferry_trigger_errors_total")
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v", step, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	want("before Run", 0, 0, 0, 0)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	src.connects <- errors.New("connection refused")
	want("connect refused", 0, 1, 0, 0)
	src.connects <- nil
	want("connected", 1, 1, 0, 0)
	src.reads <- fmt.Errorf("socket closed: %w", poller.ErrNotConnected)
	want("connection lost", 0, 1, 1, 0)
	src.connects <- nil
	want("reconnected", 1, 1, 1, 0)
	src.reads <- errors.New("bad reply")
	want("read failed", 1, 1, 1, 1)
	src.reads <- poller.ErrRejoin
	src.connects <- nil
	want("rejoined", 1, 1, 1, 1)

	cancel()
	<-done
	want("stopped", 0, 1, 1, 1)
}
