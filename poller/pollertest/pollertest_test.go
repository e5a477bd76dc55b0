package pollertest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/wire"
)

// recorder stands in for the test in the helpers' failure paths: Fatalf
// records the message and ends the goroutine the helper runs on (run's,
// never the test's).
type recorder struct {
	testing.TB // nil: the helpers use only the methods below
	fatal      string
	logs       []string
}

func (r *recorder) Helper() {}

func (r *recorder) Logf(format string, args ...any) {
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn with a recorder on a goroutine of its own and returns the
// recorder once fn has returned or failed.
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

func wantFatal(t *testing.T, r *recorder, substr string) {
	t.Helper()
	if !strings.Contains(r.fatal, substr) {
		t.Fatalf("failure %q, want one containing %q", r.fatal, substr)
	}
}

func wantPass(t *testing.T, r *recorder) {
	t.Helper()
	if r.fatal != "" {
		t.Fatalf("failed: %s", r.fatal)
	}
}

type result struct {
	msgs []*poller.Message
	err  error
}

// source is a poller.Source that returns its scripted reads in order and
// then blocks until the context ends.
type source struct {
	reads    []result
	connects []error // scripted Connect results; nil once used up
	calls    int     // Connect calls
	closeErr error
}

func (s *source) Connect(context.Context) error {
	s.calls++
	if len(s.connects) == 0 {
		return nil
	}
	err := s.connects[0]
	s.connects = s.connects[1:]
	return err
}

func (s *source) Read(ctx context.Context) ([]*poller.Message, error) {
	if len(s.reads) > 0 {
		r := s.reads[0]
		s.reads = s.reads[1:]
		return r.msgs, r.err
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (s *source) Close(context.Context) error { return s.closeErr }

// msgs returns messages m0..m(n-1); acked records each ack's cause.
func msgs(n int, acked map[string]error) []*poller.Message {
	out := make([]*poller.Message, n)
	for i := range out {
		id := fmt.Sprintf("m%d", i)
		out[i] = &poller.Message{ID: id, Payload: []byte(id), Ack: func(_ context.Context, err error) error {
			if _, ok := acked[id]; ok {
				return errors.New("already acked")
			}
			acked[id] = err
			return nil
		}}
	}
	return out
}

// topic is a brokers.Topic whose backlog follows a script, keeping
// its last value.
type topic struct {
	backlog []int64
	polls   int
}

func (tp *topic) Name() string                      { return "t" }
func (tp *topic) SourceYAML(string) string          { return "" }
func (tp *topic) DestinationYAML() string           { return "" }
func (tp *topic) Produce(testing.TB, []brokers.Msg) {}
func (tp *topic) Backlog(_ testing.TB, group string) int64 {
	tp.polls++
	n := tp.backlog[0]
	if len(tp.backlog) > 1 {
		tp.backlog = tp.backlog[1:]
	}
	return n
}

var _ brokers.Topic = (*topic)(nil)

func TestConnect(t *testing.T) {
	wantPass(t, run(func(tb testing.TB) { pollertest.Connect(tb, &source{}, time.Second) }))
	src := &source{connects: []error{errors.New("refused")}}
	wantFatal(t, run(func(tb testing.TB) { pollertest.Connect(tb, src, time.Second) }), "Connect: refused")
	if src.calls != 1 {
		t.Errorf("Connect called %d times, want once", src.calls)
	}
}

func TestConnectRetry(t *testing.T) {
	src := &source{connects: []error{errors.New("refused"), errors.New("refused")}}
	r := run(func(tb testing.TB) { pollertest.ConnectRetry(tb, src, 10*time.Second) })
	wantPass(t, r)
	if src.calls != 3 || len(r.logs) != 2 {
		t.Errorf("%d Connect calls, %d logged failures; want 3 and 2", src.calls, len(r.logs))
	}
	down := &source{connects: []error{errors.New("a"), errors.New("b"), errors.New("c"), errors.New("d")}}
	wantFatal(t, run(func(tb testing.TB) { pollertest.ConnectRetry(tb, down, 700*time.Millisecond) }), "Connect: ")
}

func TestReadN(t *testing.T) {
	acked := map[string]error{}
	m := msgs(3, acked)
	src := &source{reads: []result{{msgs: m[:2]}, {msgs: m[2:]}}}
	var got []*poller.Message
	wantPass(t, run(func(tb testing.TB) { got = pollertest.ReadN(tb, src, 3, time.Second) }))
	if len(got) != 3 || got[0] != m[0] || got[2] != m[2] || len(acked) != 0 {
		t.Fatalf("ReadN = %v (acked %v), want m0..m2 unacked", got, acked)
	}

	src = &source{reads: []result{{msgs: m}}}
	wantFatal(t, run(func(tb testing.TB) { pollertest.ReadN(tb, src, 2, time.Second) }), "read 3 messages, want 2")
	src = &source{reads: []result{{msgs: m[:1]}, {err: errors.New("boom")}}}
	wantFatal(t, run(func(tb testing.TB) { pollertest.ReadN(tb, src, 2, time.Second) }), "Read after 1 of 2 messages: boom")
	src = &source{}
	wantFatal(t, run(func(tb testing.TB) { pollertest.ReadN(tb, src, 1, 10*time.Millisecond) }), "deadline exceeded")
}

func TestReadAckAndAckAll(t *testing.T) {
	acked := map[string]error{}
	m := msgs(3, acked)
	src := &source{reads: []result{{msgs: m[:1]}, {msgs: m[1:]}}}
	wantPass(t, run(func(tb testing.TB) { pollertest.ReadAck(tb, src, 3, time.Second) }))
	if len(acked) != 3 {
		t.Fatalf("acked %v, want all three", acked)
	}
	wantFatal(t, run(func(tb testing.TB) { pollertest.AckAll(tb, m) }), "Ack m0: already acked")

	acked = map[string]error{}
	m = msgs(2, acked)
	nack := errors.New("nack")
	wantPass(t, run(func(tb testing.TB) { pollertest.Ack(tb, m[0], nack); pollertest.AckAll(tb, m[1:]) }))
	if acked["m0"] != nack || acked["m1"] != nil || len(acked) != 2 {
		t.Fatalf("acked %v, want m0 nacked and m1 acked", acked)
	}
}

func TestReadUntil(t *testing.T) {
	m := msgs(4, map[string]error{})
	src := &source{
		reads: []result{
			{msgs: m[:2]},
			{err: fmt.Errorf("lost: %w", poller.ErrNotConnected)},
			{msgs: m[2:]}, // handled whole, although done holds after m[2]
		},
		connects: []error{errors.New("still down")},
	}
	var seen []string
	var lost int
	r := run(func(tb testing.TB) {
		lost = pollertest.ReadUntil(tb, src, 10*time.Second,
			func(m *poller.Message) { seen = append(seen, m.ID) },
			func() bool { return len(seen) >= 3 })
	})
	wantPass(t, r)
	if lost != 1 || src.calls != 2 || strings.Join(seen, ",") != "m0,m1,m2,m3" {
		t.Fatalf("lost %d, %d Connect calls, seen %v; want 1, 2, m0..m3", lost, src.calls, seen)
	}

	src = &source{reads: []result{{msgs: m[:1]}}}
	r = run(func(tb testing.TB) {
		pollertest.ReadUntil(tb, src, 20*time.Millisecond, func(*poller.Message) {}, func() bool { return false })
	})
	wantFatal(t, r, "condition not reached within 20ms")

	src = &source{reads: []result{{err: errors.New("boom")}}}
	r = run(func(tb testing.TB) {
		pollertest.ReadUntil(tb, src, time.Second, func(*poller.Message) {}, func() bool { return false })
	})
	wantFatal(t, r, "Read: boom")

	src = &source{reads: []result{{err: errors.New("unread")}}}
	r = run(func(tb testing.TB) {
		pollertest.ReadUntil(tb, src, time.Second, func(*poller.Message) {}, func() bool { return true })
	})
	wantPass(t, r)
	if len(src.reads) != 1 {
		t.Fatal("ReadUntil read although done held from the start")
	}
}

func TestReadNone(t *testing.T) {
	wantPass(t, run(func(tb testing.TB) { pollertest.ReadNone(tb, &source{}, 10*time.Millisecond) }))
	src := &source{reads: []result{{msgs: msgs(2, map[string]error{})}}}
	wantFatal(t, run(func(tb testing.TB) { pollertest.ReadNone(tb, src, time.Second) }), `read 2 unexpected messages, first "m0" (m0)`)
	src = &source{reads: []result{{err: poller.ErrNotConnected}}}
	wantFatal(t, run(func(tb testing.TB) { pollertest.ReadNone(tb, src, time.Second) }), "want the context deadline")
}

func TestClose(t *testing.T) {
	wantPass(t, run(func(tb testing.TB) { pollertest.Close(tb, &source{}) }))
	wantFatal(t, run(func(tb testing.TB) { pollertest.Close(tb, &source{closeErr: errors.New("stuck")}) }), "Close: stuck")
}

func TestWaitBacklog(t *testing.T) {
	tp := &topic{backlog: []int64{5, 3, 0}}
	wantPass(t, run(func(tb testing.TB) { pollertest.WaitBacklog(tb, tp, "g", 0, 10*time.Second) }))
	if tp.polls != 3 {
		t.Errorf("Backlog polled %d times, want 3", tp.polls)
	}
	tp = &topic{backlog: []int64{2}}
	wantFatal(t, run(func(tb testing.TB) { pollertest.WaitBacklog(tb, tp, "g", 0, 100*time.Millisecond) }),
		`backlog of "g" is 2 after 100ms, want 0`)
}

func TestPollBacklog(t *testing.T) {
	tp := &topic{backlog: []int64{9, 7, 4}}
	var n int64
	var ok bool
	wantPass(t, run(func(tb testing.TB) {
		n, ok = pollertest.PollBacklog(tb, tp, "g", func(b int64) bool { return b < 5 }, 10*time.Second)
	}))
	if n != 4 || !ok {
		t.Fatalf("PollBacklog = %d, %v; want 4, true", n, ok)
	}
	tp = &topic{backlog: []int64{9}}
	start := time.Now()
	wantPass(t, run(func(tb testing.TB) {
		n, ok = pollertest.PollBacklog(tb, tp, "g", func(b int64) bool { return b == 0 }, 100*time.Millisecond)
	}))
	if n != 9 || ok || time.Since(start) < 100*time.Millisecond {
		t.Fatalf("PollBacklog = %d, %v after %v; want 9, false after the deadline", n, ok, time.Since(start))
	}
}

func TestSeqMsgs(t *testing.T) {
	got := pollertest.SeqMsgs(7, 3, "2")
	if len(got) != 3 {
		t.Fatalf("%d messages, want 3", len(got))
	}
	for i, m := range got {
		seq := fmt.Sprint(7 + i)
		if string(m.Payload) != seq || m.Headers["seq"] != seq || m.Headers[wire.HeaderHops] != "2" ||
			m.Key != fmt.Sprintf("k%d", (7+i)%8) || len(m.Headers) != 2 {
			t.Errorf("message %d: %+v", i, m)
		}
	}
}
