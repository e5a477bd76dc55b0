package conformance

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/ferrytest"
)

// Features are the parts of the contract a broker supports.
type Features struct {
	// SharedGroup: two Ferry processes on one consumer group share the
	// work, and one takes over when the other dies (Kafka, RocketMQ, Redis).
	SharedGroup bool
}

// settle is how long a scenario may take to reach its end state.
const settle = 3 * time.Minute

// Run runs the delivery contract against b: the same scenarios, the same
// assertions, whichever broker a trigger reads.
func Run(t *testing.T, b Broker, feat Features) {
	brokers.Require(t, b.Name())
	ferrytest.Binary(t)
	s := &suite{b: b}
	t.Run("DeliversEveryMessage", s.deliversEveryMessage)
	t.Run("KeepsOrderWithConcurrencyOne", s.keepsOrder)
	t.Run("PermanentFailuresGoToOnFailure", s.permanentFailures)
	t.Run("BatchesAndPartialFailures", s.batches)
	t.Run("BisectRetriesAndOnFailure", s.bisect)
	t.Run("MaxAge", s.maxAge)
	t.Run("FilterCommitsUnmatched", s.filter)
	t.Run("Kill9AndRestartLosesNothing", func(t *testing.T) { s.restart(t, false) })
	t.Run("SigtermAndRestartNoDuplicates", func(t *testing.T) { s.restart(t, true) })
	t.Run("BrokerRestart", s.brokerRestart)
	if feat.SharedGroup {
		t.Run("TwoProcessesShareAGroup", s.sharedGroup)
	}
}

type suite struct{ b Broker }

// trigger describes the trigger under test.
type trigger struct {
	source      string
	concurrency int
	batch       int
	window      string
	bisect      bool
	extra       string // more trigger keys, each line indented by 4 spaces
}

// config is Ferry's config: one tenant, function f on fn, on_failure to
// rcv, and the trigger.
func config(fn *function, rcv *ferrytest.Receiver, tr trigger) string {
	if tr.concurrency == 0 {
		tr.concurrency = 1
	}
	if tr.batch == 0 {
		tr.batch = 1
	}
	if tr.window == "" {
		tr.window = "0s"
	}
	return fmt.Sprintf(`tenants: [ { name: t, api_keys: [conformance-key], max_concurrency: 64 } ]
functions:
  - name: f
    tenant: t
    backend: { http: { url: %q, timeout: 10s } }
    max_concurrency: 16
    retry: { max_attempts: 3, initial_interval: 20ms, max_interval: 200ms, max_age: 1h }
    destinations: { on_failure: [ %s ] }
triggers:
  - name: trig
    function: f
    source: %s
    concurrency: %d
    batch: { size: %d, window: %s, bisect_on_error: %v }
%s`, fn.url(), rcv.YAML(), tr.source, tr.concurrency, tr.batch, tr.window, tr.bisect, tr.extra)
}

// messages builds n messages numbered from first, spread over keys keys.
func messages(first, n, keys int) []Msg {
	msgs := make([]Msg, n)
	for i := range msgs {
		seq := first + i
		key := fmt.Sprintf("k%d", seq%keys)
		body, _ := json.Marshal(payload{Seq: seq, Key: key})
		parity := map[bool]string{true: "even", false: "odd"}[seq%2 == 0]
		msgs[i] = Msg{Key: key, Payload: body, Headers: map[string]string{"seq": fmt.Sprint(seq), "parity": parity}}
	}
	return msgs
}

// tally counts as reliability.md says: of n produced messages (0..n-1),
// lost = neither succeeded nor reported failed, duplicated = extra
// successes, unexpected = invocations of messages never produced.
type tally struct{ n, lost, duplicated, unexpected int }

func count(n int, fns []*function, failed map[int]bool) tally {
	c := tally{n: n}
	success := map[int]int{}
	for _, f := range fns {
		tries, ok, _ := f.snapshot()
		for seq, k := range ok {
			success[seq] += k
		}
		for seq := range tries {
			if seq < 0 || seq >= n {
				c.unexpected++
			}
		}
	}
	for seq := range n {
		switch k := success[seq]; {
		case k == 0 && !failed[seq]:
			c.lost++
		case k > 1:
			c.duplicated += k - 1
		}
	}
	return c
}

func (c tally) String() string {
	return fmt.Sprintf("N=%d lost=%d duplicated=%d unexpected=%d", c.n, c.lost, c.duplicated, c.unexpected)
}

// waitDone waits until every message of 0..n-1 succeeded on some function
// (or is in failed) and the group's backlog is 0.
func waitDone(t *testing.T, topic Topic, group string, n int, fns []*function, failed map[int]bool) {
	t.Helper()
	ferrytest.WaitFor(t, settle, fmt.Sprintf("%d messages settled and committed", n), func() bool {
		c := count(n, fns, failed)
		return c.lost == 0 && topic.Backlog(t, group) == 0
	})
}

func (s *suite) deliversEveryMessage(t *testing.T) {
	const n = 1000
	topic := s.b.NewTopic(t, 3)
	fn, rcv := newFunction(t, nil, 0), ferrytest.NewReceiver(t)
	topic.Produce(t, messages(0, n, 12))
	ferrytest.Start(t, config(fn, rcv, trigger{source: topic.SourceYAML("g-all"), concurrency: 4}))
	waitDone(t, topic, "g-all", n, []*function{fn}, nil)
	c := count(n, []*function{fn}, nil)
	t.Logf("%s: %s", s.b.Name(), c)
	if c.lost != 0 || c.unexpected != 0 || fn.invoked() != n {
		t.Fatalf("%s; invoked %d distinct messages, want %d", c, fn.invoked(), n)
	}
}

func (s *suite) keepsOrder(t *testing.T) {
	const n, keys = 300, 3
	topic := s.b.NewTopic(t, keys)
	fn, rcv := newFunction(t, nil, 0), ferrytest.NewReceiver(t)
	topic.Produce(t, messages(0, n, keys))
	ferrytest.Start(t, config(fn, rcv, trigger{source: topic.SourceYAML("g-order"), concurrency: 1}))
	waitDone(t, topic, "g-order", n, []*function{fn}, nil)
	_, _, order := fn.snapshot()
	last := map[int]int{}
	for _, seq := range order {
		if prev, seen := last[seq%keys]; seen && seq < prev {
			t.Fatalf("key k%d: message %d invoked after %d", seq%keys, seq, prev)
		}
		last[seq%keys] = seq
	}
}

func (s *suite) permanentFailures(t *testing.T) {
	const n = 200
	bad := func(seq int) bool { return seq%25 == 7 }
	topic := s.b.NewTopic(t, 2)
	fn := newFunction(t, func(seq, _ int) int {
		if bad(seq) {
			return http.StatusBadRequest
		}
		return 0
	}, 0)
	rcv := ferrytest.NewReceiver(t)
	topic.Produce(t, messages(0, n, 4))
	ferrytest.Start(t, config(fn, rcv, trigger{source: topic.SourceYAML("g-fail"), concurrency: 2}))
	failed := map[int]bool{}
	for seq := range n {
		if bad(seq) {
			failed[seq] = true
		}
	}
	waitDone(t, topic, "g-fail", n, []*function{fn}, failed)
	ferrytest.WaitFor(t, 30*time.Second, "the on_failure outcomes", func() bool { return len(rcv.Outcomes()) >= len(failed) })
	got := map[int]bool{}
	for _, o := range rcv.Outcomes() {
		seq, ok := fn.seqOf(o.ID)
		if !ok || !failed[seq] || got[seq] || o.Error == nil || o.Error.Code != "rejected" {
			t.Fatalf("unexpected on_failure outcome %+v (seq %d known %v)", o, seq, ok)
		}
		got[seq] = true
	}
	if len(got) != len(failed) {
		t.Fatalf("on_failure got %d messages, want exactly the %d failing ones", len(got), len(failed))
	}
}

func (s *suite) batches(t *testing.T) {
	const n = 200
	flaky := func(seq int) bool { return seq%10 == 3 }
	topic := s.b.NewTopic(t, 1)
	fn := newFunction(t, func(seq, try int) int {
		if flaky(seq) && try == 1 {
			return http.StatusInternalServerError
		}
		return 0
	}, 0)
	rcv := ferrytest.NewReceiver(t)
	topic.Produce(t, messages(0, n, 1))
	ferrytest.Start(t, config(fn, rcv, trigger{source: topic.SourceYAML("g-batch"), batch: 10, window: "100ms"}))
	waitDone(t, topic, "g-batch", n, []*function{fn}, nil)
	for _, size := range fn.batchSizes() {
		if size > 10 {
			t.Fatalf("a batch of %d messages; want at most 10", size)
		}
	}
	tries, _, _ := fn.snapshot()
	for seq := range n {
		want := 1
		if flaky(seq) {
			want = 2
		}
		if tries[seq] != want {
			t.Fatalf("message %d invoked %d times, want %d (only reported items are retried)", seq, tries[seq], want)
		}
	}
}

// bisect: batches that fail without a per-item report are split to find
// the failing messages; a message that keeps failing goes to on_failure
// after max_attempts, one that fails once is retried and succeeds.
func (s *suite) bisect(t *testing.T) {
	const n = 64
	bad := func(seq int) bool { return seq%16 == 5 }
	flaky := func(seq int) bool { return seq%16 == 9 }
	topic := s.b.NewTopic(t, 1)
	fn := newFunction(t, func(seq, try int) int {
		if bad(seq) || (flaky(seq) && try == 1) {
			return http.StatusInternalServerError
		}
		return 0
	}, 0)
	fn.wholeBatch = true
	rcv := ferrytest.NewReceiver(t)
	topic.Produce(t, messages(0, n, 1))
	ferrytest.Start(t, config(fn, rcv, trigger{source: topic.SourceYAML("g-bisect"), batch: 8, window: "200ms", bisect: true}))
	failed := map[int]bool{}
	for seq := range n {
		failed[seq] = bad(seq)
	}
	waitDone(t, topic, "g-bisect", n, []*function{fn}, failed)
	ferrytest.WaitFor(t, 30*time.Second, "the on_failure outcomes", func() bool { return len(rcv.Outcomes()) >= 4 })
	for _, o := range rcv.Outcomes() {
		seq, ok := fn.seqOf(o.ID)
		if !ok || !bad(seq) || o.Error == nil || o.Error.Code != "retries_exhausted" || o.Attempts != 3 {
			t.Fatalf("unexpected on_failure outcome %+v (seq %d)", o, seq)
		}
	}
	if got := len(rcv.Outcomes()); got != 4 {
		t.Fatalf("on_failure got %d outcomes, want the 4 bad messages once each", got)
	}
	_, success, _ := fn.snapshot()
	for seq := range n {
		if !bad(seq) && success[seq] != 1 {
			t.Fatalf("message %d succeeded %d times, want 1", seq, success[seq])
		}
	}
}

// maxAge: a failing message whose next attempt would start after
// retry.max_age goes to on_failure without further attempts.
func (s *suite) maxAge(t *testing.T) {
	topic := s.b.NewTopic(t, 1)
	fn := newFunction(t, func(seq, _ int) int {
		if seq == 1 {
			return http.StatusServiceUnavailable
		}
		return 0
	}, 0)
	rcv := ferrytest.NewReceiver(t)
	topic.Produce(t, messages(0, 3, 1))
	ferrytest.Start(t, config(fn, rcv, trigger{source: topic.SourceYAML("g-age"),
		extra: "    retry: { max_attempts: 10, initial_interval: 50ms, max_age: 1ms }\n"}))
	waitDone(t, topic, "g-age", 3, []*function{fn}, map[int]bool{1: true})
	ferrytest.WaitFor(t, 30*time.Second, "the on_failure outcome", func() bool { return len(rcv.Outcomes()) == 1 })
	if o := rcv.Outcomes()[0]; o.Error == nil || o.Error.Code != "max_age_exceeded" || o.Attempts != 1 {
		t.Fatalf("outcome %+v, want max_age_exceeded after 1 attempt", o)
	}
}

// filter: messages that do not match are committed without invoking; the
// filter reads the broker's headers and the JSON payload.
func (s *suite) filter(t *testing.T) {
	const n = 100
	topic := s.b.NewTopic(t, 2)
	fn, rcv := newFunction(t, nil, 0), ferrytest.NewReceiver(t)
	topic.Produce(t, messages(0, n, 4))
	ferrytest.Start(t, config(fn, rcv, trigger{source: topic.SourceYAML("g-filter"), concurrency: 2,
		extra: "    filter: { headers: { parity: even }, json: { key: [k0, k1, k2] } }\n"}))
	ferrytest.WaitFor(t, settle, "the backlog committed", func() bool { return topic.Backlog(t, "g-filter") == 0 })
	tries, _, _ := fn.snapshot()
	for seq := range n {
		want := seq%4 == 0 || seq%4 == 2 // even, and key k0 or k2
		if (tries[seq] > 0) != want {
			t.Fatalf("message %d (key k%d) invoked %d times; want invoked=%v", seq, seq%4, tries[seq], want)
		}
	}
}

// restart kills (or stops) Ferry in the middle of a run and starts it again.
func (s *suite) restart(t *testing.T, graceful bool) {
	const n = 1000
	group := "g-kill"
	if graceful {
		group = "g-term"
	}
	topic := s.b.NewTopic(t, 3)
	fn, rcv := newFunction(t, nil, 2*time.Millisecond), ferrytest.NewReceiver(t)
	topic.Produce(t, messages(0, n, 12))
	p := ferrytest.Start(t, config(fn, rcv, trigger{source: topic.SourceYAML(group), concurrency: 4}))
	ferrytest.WaitFor(t, settle, "300 messages processed", func() bool { return fn.succeeded() >= 300 })
	if graceful {
		p.Term()
	} else {
		p.Kill9()
	}
	stopped := time.Now()
	p.Restart()
	waitDone(t, topic, group, n, []*function{fn}, nil)
	c := count(n, []*function{fn}, nil)
	t.Logf("%s %s: %s recovery_s=%.1f", s.b.Name(), map[bool]string{true: "SIGTERM", false: "kill -9"}[graceful], c, time.Since(stopped).Seconds())
	if c.lost != 0 || c.unexpected != 0 {
		t.Fatalf("%s: want lost=0 unexpected=0", c)
	}
	if graceful && c.duplicated != 0 {
		t.Fatalf("%s: a graceful stop must not duplicate", c)
	}
}

func (s *suite) brokerRestart(t *testing.T) {
	const half = 300
	topic := s.b.NewTopic(t, 2)
	fn, rcv := newFunction(t, nil, time.Millisecond), ferrytest.NewReceiver(t)
	topic.Produce(t, messages(0, half, 4))
	ferrytest.Start(t, config(fn, rcv, trigger{source: topic.SourceYAML("g-broker"), concurrency: 2}))
	ferrytest.WaitFor(t, settle, "100 messages processed", func() bool { return fn.succeeded() >= 100 })
	brokers.Restart(t, s.b.Name())
	topic.Produce(t, messages(half, half, 4))
	waitDone(t, topic, "g-broker", 2*half, []*function{fn}, nil)
	c := count(2*half, []*function{fn}, nil)
	t.Logf("%s broker restart: %s", s.b.Name(), c)
	if c.lost != 0 || c.unexpected != 0 {
		t.Fatalf("%s: want lost=0 unexpected=0", c)
	}
}

func (s *suite) sharedGroup(t *testing.T) {
	const n = 1000
	topic := s.b.NewTopic(t, 4)
	rcv := ferrytest.NewReceiver(t)
	fa, fb := newFunction(t, nil, 5*time.Millisecond), newFunction(t, nil, 5*time.Millisecond)
	src := topic.SourceYAML("g-shared")
	a := ferrytest.Start(t, config(fa, rcv, trigger{source: src, concurrency: 2}))
	ferrytest.Start(t, config(fb, rcv, trigger{source: src, concurrency: 2}))
	topic.Produce(t, messages(0, n, 16))
	fns := []*function{fa, fb}
	ferrytest.WaitFor(t, settle, "both processes working", func() bool {
		return fa.succeeded() > 0 && fb.succeeded() > 0 && fa.succeeded()+fb.succeeded() >= 300
	})
	a.Kill9()
	waitDone(t, topic, "g-shared", n, fns, nil)
	c := count(n, fns, nil)
	t.Logf("%s shared group, one process killed: %s (a=%d b=%d)", s.b.Name(), c, fa.succeeded(), fb.succeeded())
	if c.lost != 0 || c.unexpected != 0 {
		t.Fatalf("%s: want lost=0 unexpected=0", c)
	}
}
