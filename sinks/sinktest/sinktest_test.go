package sinktest_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/wire"
)

// recorder stands in for the test in the helpers' failure paths: it
// records errors, and Fatal/FailNow end the goroutine the helper runs on
// (run's, never the test's).
type recorder struct {
	testing.TB // nil: the helpers use only the methods below
	errs       []string
	fatal      string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Log(...any)                   {}
func (r *recorder) Logf(string, ...any)          {}
func (r *recorder) Failed() bool                 { return len(r.errs) > 0 || r.fatal != "" }
func (r *recorder) FailNow()                     { r.fatal = "FailNow"; runtime.Goexit() }
func (r *recorder) Fatal(args ...any)            { r.fatal = fmt.Sprint(args...); runtime.Goexit() }
func (r *recorder) Fatalf(f string, a ...any)    { r.fatal = fmt.Sprintf(f, a...); runtime.Goexit() }
func (r *recorder) Errorf(f string, args ...any) { r.errs = append(r.errs, fmt.Sprintf(f, args...)) }

// run calls fn with a recorder on a goroutine of its own and returns the
// recorder once fn has returned or ended.
func run(fn func(tb testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r
}

// sinkFunc is a sinks.Sink made of a function.
type sinkFunc func(ctx context.Context, o *wire.Outcome) error

func (f sinkFunc) Deliver(ctx context.Context, o *wire.Outcome) error { return f(ctx, o) }

func TestDeliverConcurrently(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	s := sinkFunc(func(_ context.Context, o *wire.Outcome) error {
		mu.Lock()
		defer mu.Unlock()
		got[o.ID]++
		if o.ID == "o-7" {
			return errors.New("refused")
		}
		return nil
	})
	var ids []string
	r := run(func(tb testing.TB) {
		ids, _ = sinktest.DeliverConcurrently(tb, s, 20, 4, time.Second, func(i int) *wire.Outcome {
			return sinktest.Succeeded(fmt.Sprintf("o-%d", i))
		})
	})
	if len(got) != 20 || got["o-0"] != 1 || got["o-19"] != 1 {
		t.Errorf("delivered %v, want o-0 .. o-19 once each", got)
	}
	if r.fatal != "FailNow" || len(r.errs) != 1 || !strings.Contains(r.errs[0], "refused") {
		t.Errorf("with one failed Deliver: errors %q, fatal %q; want the error, then FailNow", r.errs, r.fatal)
	}
	if ids != nil {
		t.Errorf("returned %v after a failed Deliver", ids)
	}
}

func TestDeliverFails(t *testing.T) {
	hang := sinkFunc(func(ctx context.Context, _ *wire.Outcome) error { <-ctx.Done(); return ctx.Err() })
	var err error
	r := run(func(tb testing.TB) {
		err = sinktest.DeliverFails(tb, hang, sinktest.Failed("x", 1), 10*time.Millisecond)
	})
	if r.Failed() || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("DeliverFails on a hung sink: %v (errors %q, fatal %q), want the deadline and no failure", err, r.errs, r.fatal)
	}
	ok := sinkFunc(func(context.Context, *wire.Outcome) error { return nil })
	r = run(func(tb testing.TB) { sinktest.DeliverFails(tb, ok, sinktest.Failed("x", 1), time.Second) })
	if r.fatal != "Deliver succeeded" {
		t.Errorf("DeliverFails on a working sink: fatal %q", r.fatal)
	}
}

func TestNoAnswers(t *testing.T) {
	for _, na := range sinktest.NoAnswers(t) {
		c, err := net.DialTimeout("tcp", na.Addr, time.Second)
		switch na.Name {
		case "Refused":
			if err == nil {
				c.Close()
				t.Errorf("%s: dial %s succeeded", na.Name, na.Addr)
			}
		case "Hung":
			if err != nil {
				t.Fatalf("%s: dial %s: %v", na.Name, na.Addr, err)
			}
			_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, err := c.Read(make([]byte, 1)); !isTimeout(err) {
				t.Errorf("%s: read %d bytes (%v), want a timeout", na.Name, n, err)
			}
			c.Close()
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestCheckMessage(t *testing.T) {
	o := sinktest.Succeeded("task-1")
	enc, err := sinks.Encode(o)
	if err != nil {
		t.Fatal(err)
	}
	msg := func(mutate func(h map[string]string)) brokers.Msg {
		h := map[string]string{}
		for k, v := range enc.Headers {
			h[k] = v
		}
		if mutate != nil {
			mutate(h)
		}
		return brokers.Msg{Payload: enc.Body, Headers: h, ContentType: wire.OutcomeContentType}
	}
	for _, tc := range []struct {
		name    string
		o       *wire.Outcome
		m       brokers.Msg
		wantErr string // "" = passes
	}{
		{"AsEncoded", o, msg(nil), ""},
		{"HopsNotDecimal", o, msg(func(h map[string]string) { h[wire.HeaderHops] = "01" }), "header ferry-hops"},
		{"NoID", o, msg(func(h map[string]string) { delete(h, wire.HeaderID) }), "header ferry-id"},
		{"TraceParentNotWanted", func() *wire.Outcome { c := *o; c.TraceParent = ""; return &c }(), msg(nil), "header traceparent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(func(tb testing.TB) { sinktest.CheckMessage(tb, tc.m, tc.o) })
			switch {
			case tc.wantErr == "" && r.Failed():
				t.Errorf("errors %q, fatal %q, want none", r.errs, r.fatal)
			case tc.wantErr != "" && (len(r.errs) == 0 || !strings.Contains(strings.Join(r.errs, "\n"), tc.wantErr)):
				t.Errorf("errors %q, want one about %s", r.errs, tc.wantErr)
			}
		})
	}
}
