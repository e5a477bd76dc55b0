package sinktest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/wire"
)

// Features are the real differences between message-broker sinks that the
// Sink contract allows for.
type Features struct {
	// Parallel runs the scenarios (all but BrokerOutage) in parallel.
	Parallel bool
	// Within bounds each Deliver and each read back. Zero means 30s.
	Within time.Duration
	// KeyIsID: the message key is the outcome id (Kafka key, RocketMQ
	// keys, AMQP message-id).
	KeyIsID bool
	// ContentType: the message carries wire.OutcomeContentType (Kafka
	// header, AMQP property, Redis field); RocketMQ has no such field.
	ContentType bool
	// Outage is the broker-outage scenario for this broker.
	Outage Outage
}

// NewSink returns a sink that delivers to tp, on the test broker; it
// closes what it opened in t.Cleanup.
type NewSink func(t testing.TB, tp brokers.Reader) sinks.Sink

// NewUnreachableSink returns a sink of the same kind whose broker is at
// addr, where nothing answers (refused, or a hung server); it closes what
// it opened in t.Cleanup.
type NewUnreachableSink func(t testing.TB, addr string) sinks.Sink

// TestSink runs the Sink contract against the sinks newSink builds, on
// b's real broker, reading every outcome back with the broker's own
// client: concurrent deliveries all arrive once; the body is the outcome
// JSON and the headers carry ferry-hops, traceparent, ferry-id and
// ferry-type; a Deliver whose context has ended returns its error at once
// and the sink works afterwards; where nothing answers Deliver fails
// within its deadline and names the address (unreachable, when not nil);
// and after a broker
// outage the same sink delivers again by itself. Call it from one test
// function per sink that is not itself parallel: BrokerOutage stops the
// broker.
func TestSink(t *testing.T, b brokers.Broker, feat Features, newSink NewSink, unreachable NewUnreachableSink) {
	if feat.Within == 0 {
		feat.Within = 30 * time.Second
	}
	s := &sinkSuite{b: b, f: feat, newSink: newSink}
	t.Run("BrokerOutage", s.outage) // first: not parallel
	cases := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"DeliverConcurrently", s.concurrently},
		{"BodyAndHeaders", s.bodyAndHeaders},
		{"ContextEnded", s.contextEnded},
	}
	if unreachable != nil {
		cases = append(cases, struct {
			name string
			fn   func(*testing.T)
		}{"NoBrokerAnswers", func(t *testing.T) {
			for _, na := range NoAnswers(t) {
				t.Run(na.Name, func(t *testing.T) {
					err := DeliverFails(t, unreachable(t, na.Addr), Succeeded("x"), 500*time.Millisecond)
					if !strings.Contains(err.Error(), na.Addr) {
						t.Errorf("error %q does not name the broker %s", err, na.Addr)
					}
				})
			}
		}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if feat.Parallel {
				t.Parallel()
			}
			c.fn(t)
		})
	}
}

type sinkSuite struct {
	b       brokers.Broker
	f       Features
	newSink NewSink
}

func (s *sinkSuite) topic(t testing.TB, scopes int) brokers.Reader {
	t.Helper()
	tp, ok := s.b.NewTopic(t, scopes).(brokers.Reader)
	if !ok {
		t.Fatalf("sinktest: %s's topics cannot be read back (brokers.Reader)", s.b.Name())
	}
	return tp
}

// concurrently: 1,000 outcomes delivered by 8 goroutines through one sink
// are all on the broker afterwards, each once, its body naming its id.
func (s *sinkSuite) concurrently(t *testing.T) {
	const n, workers = 1000, 8
	tp := s.topic(t, 3)
	sink := s.newSink(t, tp)
	ids, took := DeliverConcurrently(t, sink, n, workers, s.f.Within, func(i int) *wire.Outcome {
		return Failed(fmt.Sprintf("%s-%04d", tp.Name(), i), 1)
	})
	msgs := tp.ReadBack(t, n, 2*s.f.Within)
	got := map[string]int{}
	for _, m := range msgs {
		id := ByHeaderID(m)
		got[id]++
		var body struct{ ID string }
		if err := json.Unmarshal(m.Payload, &body); err != nil || body.ID != id {
			t.Errorf("message %s has body id %q (%v)", id, body.ID, err)
		}
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Errorf("%s found %d times, want 1", id, got[id])
		}
	}
	t.Logf("%d outcomes delivered by %d goroutines in %v; %d distinct ids read back", n, workers, took.Round(time.Millisecond), len(got))
}

// bodyAndHeaders: a succeeded outcome (hop count 7, a traceparent) and a
// failure record (hop count 0, none) are read back with the outcome JSON
// as body and ferry-hops, traceparent (only when set), ferry-id and
// ferry-type as headers; the key and content type where the broker has
// them.
func (s *sinkSuite) bodyAndHeaders(t *testing.T) {
	tp := s.topic(t, 1)
	sink := s.newSink(t, tp)
	succeeded := Succeeded(tp.Name() + "-succeeded")
	succeeded.Hops = 7
	failed := Failed(tp.Name()+"-failed", 0)
	failed.TraceParent = ""
	outs := []*wire.Outcome{succeeded, failed}
	for _, o := range outs {
		Deliver(t, sink, o, s.f.Within)
	}
	got := ReadBack(t, tp, len(outs), 2*s.f.Within, ByHeaderID)
	for _, o := range outs {
		t.Run(o.Type, func(t *testing.T) {
			m, ok := got[o.ID]
			if !ok {
				t.Fatalf("no message for %s; read %d", o.ID, len(got))
			}
			CheckMessage(t, m, o)
			if s.f.KeyIsID && m.Key != o.ID {
				t.Errorf("key %q, want the id %q", m.Key, o.ID)
			}
			if s.f.ContentType && m.ContentType != wire.OutcomeContentType {
				t.Errorf("content type %q, want %q", m.ContentType, wire.OutcomeContentType)
			}
		})
	}
}

// contextEnded: Deliver with a cancelled or expired context returns the
// context's error within a second, and the sink delivers afterwards.
func (s *sinkSuite) contextEnded(t *testing.T) {
	tp := s.topic(t, 1)
	sink := s.newSink(t, tp)
	Deliver(t, sink, Succeeded(tp.Name()+"-warm-up"), s.f.Within)
	for _, e := range EndedContexts() {
		t.Run(e.Name, func(t *testing.T) {
			DeliverEnded(t, sink, Succeeded(tp.Name()+"-"+e.Name), e, time.Second)
		})
	}
	Deliver(t, sink, Succeeded(tp.Name()+"-after"), s.f.Within)
	got := ReadBack(t, tp, 2, 2*s.f.Within, ByHeaderID)
	for _, id := range []string{"-warm-up", "-after"} {
		if _, ok := got[tp.Name()+id]; !ok {
			t.Errorf("outcome %s%s missing; read %d", tp.Name(), id, len(got))
		}
	}
	for _, e := range EndedContexts() {
		if _, ok := got[tp.Name()+"-"+e.Name]; ok {
			t.Errorf("outcome %s-%s was delivered although its context had ended", tp.Name(), e.Name)
		}
	}
}

// outage: Outage.Run on a sink that has delivered once; the outcomes
// delivered before and after the outage are both on the broker.
func (s *sinkSuite) outage(t *testing.T) {
	tp := s.topic(t, 1)
	sink := s.newSink(t, tp)
	Deliver(t, sink, Failed(tp.Name()+"-before", 1), s.f.Within) // connected, metadata cached
	s.f.Outage.Run(t, sink, Failed(tp.Name()+"-during", 1), Failed(tp.Name()+"-after", 1))
	got := ReadBack(t, tp, 2, 2*s.f.Within, ByHeaderID)
	for _, id := range []string{"-before", "-after"} {
		if _, ok := got[tp.Name()+id]; !ok {
			t.Errorf("outcome %s%s missing after the outage; read %v", tp.Name(), id, len(got))
		}
	}
}
