package dispatcher_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/wire"
)

// The errors Go's os/exec and net return when the process is out of file
// descriptors (what the connection-flood probe saw: every task failed
// with retries_exhausted).
var (
	errPipeEMFILE   = fmt.Errorf("exec_start: starting /bin/cat: %w", &os.SyscallError{Syscall: "pipe2", Err: syscall.EMFILE})
	errSocketEMFILE = fmt.Errorf("post http://127.0.0.1:1/: %w", &os.SyscallError{Syscall: "socket", Err: syscall.EMFILE})
)

func TestClassifyLocalResource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"PipeEMFILE", dispatcher.Retryable("exec_start", errPipeEMFILE, 0), "emfile"},
		{"SocketEMFILE", dispatcher.Retryable("connection", errSocketEMFILE, 0), "emfile"},
		{"ENFILE", &os.SyscallError{Syscall: "socket", Err: syscall.ENFILE}, "enfile"},
		{"ForkENOMEM", &os.PathError{Op: "fork/exec", Path: "/bin/cat", Err: syscall.ENOMEM}, "enomem"},
		{"NoLocalPort", &os.SyscallError{Syscall: "connect", Err: syscall.EADDRNOTAVAIL}, "eaddrnotavail"},
		{"Marked", dispatcher.Local("eagain", syscall.EAGAIN), "eagain"},
		{"Refused", dispatcher.Retryable("connection", &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}, 0), ""},
		{"Plain", errors.New("too many open files, says the function"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dispatcher.Classify(tt.err)
			if c.Local != tt.want {
				t.Fatalf("Classify(%v).Local = %q, want %q", tt.err, c.Local, tt.want)
			}
			if tt.want != "" && (c.Code != dispatcher.CodeLocalResource || c.Permanent) {
				t.Fatalf("Classify(%v) = %+v, want a retryable %s", tt.err, c, dispatcher.CodeLocalResource)
			}
		})
	}
}

// TestLocalResourceErrorsSpendNoAttempt: a task whose backend fails with
// EMFILE (twice) goes back to the queue without spending an attempt, and
// so does its outcome delivery: with max_attempts 1 both still succeed,
// and ferry_local_resource_errors_total counts every one.
func TestLocalResourceErrorsSpendNoAttempt(t *testing.T) {
	t.Parallel()
	var calls, deliveries atomic.Int32
	backend := dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		if calls.Add(1) <= 2 {
			return nil, dispatcher.Retryable("exec_start", errPipeEMFILE, 0)
		}
		return &dispatcher.Result{Output: inv.Payload}, nil
	})
	sink := &recordingSink{}
	flaky := sinkFunc(func(ctx context.Context, o *wire.Outcome) error {
		if deliveries.Add(1) <= 2 {
			return errSocketEMFILE
		}
		return sink.Deliver(ctx, o)
	})
	reg := prometheus.NewRegistry()
	b := setup(t, dispatcher.Config{Metrics: dispatcher.NewMetrics(reg), Functions: []*dispatcher.Function{{
		Lane: lane("t", "f"), Backend: backend, Timeout: time.Second, Retry: fastRetry(1),
		OnSuccess: []dispatcher.Destination{{Name: "on_success[0]", Kind: "test", Sink: flaky, Retry: fastRetry(1), Timeout: time.Second}},
	}}}, dispatcher.TaskRunnerConfig{Workers: 2})

	id := b.submit(t, "t", "f", 0, "hello")
	got := b.waitFinal(t, "t", id)
	if got.Status != async.StatusSucceeded || got.Attempts != 1 || calls.Load() != 3 {
		t.Fatalf("status %s attempts %d after %d calls; want succeeded, 1 attempt, 3 calls (2 not spent)", got.Status, got.Attempts, calls.Load())
	}
	outs := sink.waitFor(t, id)
	if len(outs) != 1 {
		t.Fatalf("outcomes %+v, want one", outs)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		task, err := b.q.Get(context.Background(), "t", id)
		if err != nil {
			t.Fatal(err)
		}
		if d := task.Deliveries[0]; d.State == async.DeliveryDelivered {
			if d.Attempts != 1 {
				t.Fatalf("delivery %+v: want 1 attempt (2 not spent)", d)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery not recorded as delivered: %+v", task.Deliveries)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := localErrors(t, reg, "emfile"); n != 4 {
		t.Fatalf("ferry_local_resource_errors_total{kind=emfile} = %v, want 4 (2 attempts, 2 deliveries)", n)
	}
}

// localErrors reads ferry_local_resource_errors_total{kind}.
func localErrors(t *testing.T, reg *prometheus.Registry, kind string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ferry_local_resource_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == kind {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// sinkFunc adapts a function to a dispatcher.Sink.
type sinkFunc func(context.Context, *wire.Outcome) error

func (f sinkFunc) Deliver(ctx context.Context, o *wire.Outcome) error { return f(ctx, o) }
