// Package sinktest holds the helpers the message-broker sinks' tests
// share (sinks/kafka, sinks/redis, sinks/rabbitmq, sinks/rocketmq):
// building test outcomes, a logger that writes to the test log, delivering
// with a deadline (once, or many times from several goroutines), Deliver
// calls that must fail (refused at once, or at their deadline where no
// broker answers), reading outcomes back with the broker's own client
// (through the test/brokers helpers) and checking them, the broker-outage
// scenario, and the Sink contract suite every MQ sink runs (TestSink).
//
// The helpers take a sinks.Sink and a brokers.Reader; they import no
// broker sink package and none of Ferry's pollers, and compile in every build,
// with and without -race (the RocketMQ broker tests run only without it).
// Every helper marks itself with t.Helper, bounds each Deliver it starts
// with a deadline (CheckRefusals's cases bring their own context), and
// must be called on the test's goroutine: the ones that fail t with
// t.Fatalf would otherwise call it off that goroutine.
package sinktest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/wire"
)

// TraceParent is a valid W3C traceparent, the one Succeeded sets.
const TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// Slack is how much longer than its deadline a Deliver that fails may take
// before DeliverFails or Outage reports it as late.
const Slack = time.Second

// Succeeded builds a succeeded outcome with id, hop count 1, TraceParent,
// and {"id":id} as output.
func Succeeded(id string) *wire.Outcome {
	return &wire.Outcome{
		Type: wire.TypeSucceeded, ID: id, Tenant: "demo", Function: "echo",
		Status: "succeeded", Attempts: 1, Output: json.RawMessage(`{"id":` + fmt.Sprintf("%q", id) + `}`),
		Source: "ferry://demo/echo", Hops: 1, Time: time.Now().UTC(), TraceParent: TraceParent,
	}
}

// Failed builds a failure record (retries exhausted after 3 attempts) with
// id, the hop count hops, a request payload, and a traceparent that
// differs with hops.
func Failed(id string, hops int) *wire.Outcome {
	return &wire.Outcome{
		Type: wire.TypeFailed, ID: id, Tenant: "demo", Function: "echo", Status: "failed",
		Attempts: 3, Error: &wire.OutcomeError{Code: "retries_exhausted", Message: "boom"},
		Source: "ferry://test", Hops: hops, Time: time.Now().UTC().Truncate(time.Second),
		RequestPayload: json.RawMessage(`{"n":1}`),
		TraceParent:    fmt.Sprintf("00-%032x-%016x-01", hops+1, hops+1),
	}
}

// Logger returns a logger that writes the records of level and above to
// the test log (t.Log), one line each. Like t.Log, it must not be used
// once the test has completed: close what logs to it in t.Cleanup.
func Logger(t testing.TB, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: level}))
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// Deliver delivers o through s, bounded by within, and fails t
// (t.Fatalf) on error.
func Deliver(t testing.TB, s sinks.Sink, o *wire.Outcome, within time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	if err := s.Deliver(ctx, o); err != nil {
		t.Fatalf("Deliver %s: %v", o.ID, err)
	}
}

// DeliverConcurrently builds the outcomes mk(0) .. mk(n-1) and delivers
// them through s from workers goroutines, each Deliver bounded by within.
// Once every Deliver has returned, it reports each error (t.Errorf) and,
// if there was any, ends the test (t.FailNow). It returns the outcomes'
// ids, in the order of i, and how long the deliveries took.
func DeliverConcurrently(t testing.TB, s sinks.Sink, n, workers int, within time.Duration, mk func(i int) *wire.Outcome) (ids []string, took time.Duration) {
	t.Helper()
	todo := make(chan *wire.Outcome, n)
	ids = make([]string, n)
	for i := range n {
		o := mk(i)
		ids[i] = o.ID
		todo <- o
	}
	close(todo)
	errs := make(chan error, n)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for o := range todo {
				ctx, cancel := context.WithTimeout(context.Background(), within)
				if err := s.Deliver(ctx, o); err != nil {
					errs <- err
				}
				cancel()
			}
		})
	}
	wg.Wait()
	took = time.Since(start)
	close(errs)
	for err := range errs {
		t.Errorf("Deliver: %v", err)
	}
	if t.Failed() {
		t.FailNow()
	}
	return ids, took
}

// DeliverFails delivers o through s, bounded by deadline, where the
// delivery cannot work (no broker answers): it ends the test (t.Fatal) if
// Deliver succeeds, reports (t.Errorf) a Deliver that took longer than
// deadline+Slack, logs the error and returns it.
func DeliverFails(t testing.TB, s sinks.Sink, o *wire.Outcome, deadline time.Duration) error {
	t.Helper()
	took, err := deliverFails(t, s, o, deadline)
	if took > deadline+Slack {
		t.Errorf("Deliver took %v, deadline %v", took, deadline)
	}
	return err
}

// deliverFails is DeliverFails without the time check: it returns how
// long Deliver took.
func deliverFails(t testing.TB, s sinks.Sink, o *wire.Outcome, deadline time.Duration) (time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	err := s.Deliver(ctx, o)
	took := time.Since(start)
	if err == nil {
		t.Fatal("Deliver succeeded")
	}
	t.Logf("Deliver failed after %v: %v", took.Round(time.Millisecond), err)
	return took, err
}

// Ended is a way for a Deliver's context to have ended before Deliver
// returns, and the error Deliver must then return (errors.Is).
type Ended struct {
	// Name names the case, as a subtest name.
	Name string
	// Context returns the context to deliver with.
	Context func() (context.Context, context.CancelFunc)
	// WantIs is the error Deliver's error must match.
	WantIs error
}

// EndedContexts returns the two contexts that have ended before Deliver
// starts: one cancelled (context.Canceled) and one past its deadline
// (context.DeadlineExceeded).
func EndedContexts() []Ended {
	return []Ended{
		{"Cancelled", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, context.Canceled},
		{"DeadlinePassed", func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}, context.DeadlineExceeded},
	}
}

// DeliverEnded delivers o through s with the context of e, and reports
// (t.Errorf) an error that does not match e.WantIs, or a Deliver that
// took longer than within.
func DeliverEnded(t testing.TB, s sinks.Sink, o *wire.Outcome, e Ended, within time.Duration) {
	t.Helper()
	ctx, cancel := e.Context()
	defer cancel()
	start := time.Now()
	if err := s.Deliver(ctx, o); !errors.Is(err, e.WantIs) {
		t.Errorf("Deliver = %v, want errors.Is %v", err, e.WantIs)
	}
	if d := time.Since(start); d > within {
		t.Errorf("Deliver took %v after its context ended, want at most %v", d, within)
	}
}

// Unreachable returns a host:port on the loopback interface that nothing
// listens on (a port that was free a moment ago): connections to it are
// refused.
func Unreachable(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// BlackHole returns the host:port of a server that accepts connections,
// reads what they send and never answers, as a hung broker. The server and
// its connections are closed in t.Cleanup.
func BlackHole(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { _, _ = io.Copy(io.Discard, c) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// Refusal is a Deliver that must fail at once, without a broker.
type Refusal struct {
	// Name names the case, as a subtest name.
	Name string
	// Sink, Ctx and O are what to deliver through, with and what.
	Sink sinks.Sink
	Ctx  context.Context
	O    *wire.Outcome
	// WantErr is a substring the error must contain.
	WantErr string
	// WantIs, when set, is an error the error must match (errors.Is).
	WantIs error
}

// CheckRefusals runs each refusal in a subtest: Deliver must fail with an
// error containing WantErr (else the subtest ends, t.Fatalf) and matching
// WantIs when set (else t.Errorf).
func CheckRefusals(t *testing.T, refusals []Refusal) {
	t.Helper()
	for _, r := range refusals {
		t.Run(r.Name, func(t *testing.T) {
			err := r.Sink.Deliver(r.Ctx, r.O)
			if err == nil || !strings.Contains(err.Error(), r.WantErr) {
				t.Fatalf("Deliver = %v, want an error containing %q", err, r.WantErr)
			}
			if r.WantIs != nil && !errors.Is(err, r.WantIs) {
				t.Errorf("Deliver = %v, want errors.Is %v", err, r.WantIs)
			}
		})
	}
}

// NoAnswer is an address where no broker answers.
type NoAnswer struct {
	// Name names the case, as a subtest name.
	Name string
	// Addr is the host:port.
	Addr string
}

// NoAnswers returns the two addresses where no broker answers: "Refused"
// (Unreachable) and "Hung" (BlackHole).
func NoAnswers(t testing.TB) []NoAnswer {
	t.Helper()
	return []NoAnswer{{"Refused", Unreachable(t)}, {"Hung", BlackHole(t)}}
}

// ReadBack reads r back with the broker's own client (brokers.Reader)
// until it holds want messages, bounded by within, and returns them by id,
// as id names them. It fails t on any error.
func ReadBack(t testing.TB, r brokers.Reader, want int, within time.Duration, id func(brokers.Msg) string) map[string]brokers.Msg {
	t.Helper()
	got := map[string]brokers.Msg{}
	for _, m := range r.ReadBack(t, want, within) {
		got[id(m)] = m
	}
	return got
}

// ByHeaderID names a message read back by its wire.HeaderID header.
func ByHeaderID(m brokers.Msg) string { return m.Headers[wire.HeaderID] }

// CheckMessage reports (t.Errorf) where m, an outcome read back from the
// broker, differs from o as sinks.Encode encodes it: its payload is not
// o's JSON, or one of the headers wire.HeaderHops (the decimal hop count),
// wire.HeaderTraceParent (present only when o has one), wire.HeaderID and
// wire.HeaderType is missing or differs.
func CheckMessage(t testing.TB, m brokers.Msg, o *wire.Outcome) {
	t.Helper()
	enc, err := sinks.Encode(o)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Payload) != string(enc.Body) {
		t.Errorf("payload %s, want %s", m.Payload, enc.Body)
	}
	for _, k := range []string{wire.HeaderHops, wire.HeaderTraceParent, wire.HeaderID, wire.HeaderType} {
		got, ok := m.Headers[k]
		want, wantOK := enc.Headers[k]
		if got != want || ok != wantOK {
			t.Errorf("header %s = %q (present %v), want %q (present %v); headers %v", k, got, ok, want, wantOK, m.Headers)
		}
	}
}

// Outage is the broker-outage scenario: with the broker stopped, a Deliver
// fails within its deadline; once the broker is back, the same sink
// delivers again by itself (nobody calls anything but Deliver), as
// Ferry's retries would find it. The test that runs it must not be
// parallel: it takes the broker away from the package's other tests.
type Outage struct {
	// Broker is the broker to stop, a test/brokers name.
	Broker string
	// Deadline bounds the Deliver made while the broker is down, which
	// must fail within Deadline+Slack. Zero means 3s.
	Deadline time.Duration
	// Recovery is how long after the broker is back the sink may take to
	// deliver again. Zero means a minute.
	Recovery time.Duration
	// Backoff is the pause between two failed attempts once the broker is
	// back: a retry backoff, not a synchronisation. Zero means 200ms.
	Backoff time.Duration
}

// attemptTimeout bounds each Deliver attempt once the broker is back.
const attemptTimeout = 5 * time.Second

// Run plays the outage on s. It registers a t.Cleanup that starts the
// broker again (whatever happens, so that a failing test does not leave
// it stopped; registered now, it runs before the cleanups registered
// earlier, such as the ones that delete the test's topic or close the
// sink's client), stops the broker, and delivers down through s: Run ends
// the test if that Deliver succeeds or outlasts Deadline+Slack. It then
// starts the broker and delivers after through s every Backoff, each
// attempt bounded by 5s, until one succeeds; it ends the test if none has
// within Recovery of the restart. Checking that the outcomes delivered
// before and after the outage arrived is left to the caller.
func (o Outage) Run(t testing.TB, s sinks.Sink, down, after *wire.Outcome) {
	t.Helper()
	deadline := cmp.Or(o.Deadline, 3*time.Second)
	recovery := cmp.Or(o.Recovery, time.Minute)
	backoff := cmp.Or(o.Backoff, 200*time.Millisecond)

	t.Cleanup(func() { brokers.Start(t, o.Broker) }) // even when the test fails
	brokers.Stop(t, o.Broker)
	t.Logf("%s stopped", o.Broker)
	if took, _ := deliverFails(t, s, down, deadline); took > deadline+Slack {
		t.Fatalf("Deliver with %s stopped took %v, deadline %v", o.Broker, took, deadline)
	}

	brokers.Start(t, o.Broker)
	back := time.Now()
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
		err := s.Deliver(ctx, after)
		cancel()
		if err == nil {
			t.Logf("delivered again %v after %s was back (attempt %d)", time.Since(back).Round(time.Millisecond), o.Broker, attempt)
			return
		}
		if time.Since(back) > recovery {
			t.Fatalf("still failing %v after %s was back: %v", recovery, o.Broker, err)
		}
		t.Logf("attempt %d after the restart: %v", attempt, err)
		pause(backoff)
	}
}

// pause waits for d.
func pause(d time.Duration) {
	tm := time.NewTimer(d)
	defer tm.Stop()
	<-tm.C
}
