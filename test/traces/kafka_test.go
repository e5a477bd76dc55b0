package traces

import (
	"slices"
	"testing"

	"github.com/ferrydev/ferry/internal/telemetry/otlptest"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/kafkatest"
	"github.com/ferrydev/ferry/test/ferrytest"
)

// TestKafkaTriggerTrace: two messages on a fresh one-partition topic,
// each with a traceparent of its own, make one batch: a
// ferry.trigger.batch consumer span under the first message's
// traceparent, linked to the second's, naming the trigger, topic,
// partition, offsets 0 and 1 and both message ids; the invocation's
// ferry.attempt is its child and the ferry.backend.http call the
// attempt's, whose traceparent the function receives. Spans are polled
// for while Ferry runs (batch delay 100 ms). Kafka missing fails the
// test (kafkatest never skips).
func TestKafkaTriggerTrace(t *testing.T) {
	tp := kafkatest.New().CreateTopic(t, 1)
	const (
		tp0 = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		tp1 = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	)
	tp.Produce(t, []brokers.Msg{
		{Payload: []byte(`{"n":0}`), Headers: map[string]string{"traceparent": tp0}},
		{Payload: []byte(`{"n":1}`), Headers: map[string]string{"traceparent": tp1}},
	})
	rcv := otlptest.New(t)
	fn := newFunction(t)
	ferrytest.StartConfigEnv(t, `
server: { listen: "{{listen}}", shutdown_timeout: 10s }
store: { embedded: { path: "{{data}}" } }
tenants: [ { name: demo, api_keys: [demo-key] } ]
functions:
  - { name: sink, tenant: demo, backend: { http: { url: "`+fn.srv.URL+`/fn" } } }
triggers:
  - name: orders
    function: sink
    source: `+tp.SourceYAML(kafkatest.UniqueName(t))+`
    start: earliest
    batch: { size: 2, window: 10s }
`, exportEnv(rcv, "100")...)

	all := rcv.WaitFor(t, within, "the batch's backend span", func(spans []otlptest.Span) bool {
		return len(otlptest.Named(spans, "ferry.trigger.batch", "", nil)) > 0 &&
			len(otlptest.Named(spans, "ferry.backend.http", "", nil)) > 0
	})
	batch := one(t, "ferry.trigger.batch", otlptest.Named(all, "ferry.trigger.batch", "", nil), all)
	attempt := one(t, "ferry.attempt", otlptest.Named(all, "ferry.attempt", "", nil), all)
	backend := one(t, "ferry.backend.http", otlptest.Named(all, "ferry.backend.http", "", nil), all)

	if batch.Kind.String() != "SPAN_KIND_CONSUMER" || batch.TraceID != tp0[3:35] || batch.ParentSpanID != tp0[36:52] {
		t.Errorf("batch span %s trace %s parent %s; want a consumer span under the first message's %s", batch.Kind, batch.TraceID, batch.ParentSpanID, tp0)
	}
	if !slices.Contains(batch.Links, otlptest.Link{TraceID: tp1[3:35], SpanID: tp1[36:52]}) {
		t.Errorf("batch span links %v, want the second message's %s", batch.Links, tp1)
	}
	ids := []any{"kafka:" + tp.Name() + "/0/0", "kafka:" + tp.Name() + "/0/1"}
	checkAttrs(t, batch, map[string]any{
		"ferry.trigger": "orders", "ferry.tenant": "demo", "ferry.function": "sink",
		"messaging.system": "kafka", "messaging.destination.name": tp.Name(), "messaging.batch.message_count": 2,
		"messaging.destination.partition.id": "0", "ferry.offset.first": 0, "ferry.offset.last": 1,
		"messaging.kafka.offset": 0, "ferry.message.ids": ids,
	})
	childOf(t, attempt, batch)
	childOf(t, backend, attempt)
	checkAttrs(t, attempt, map[string]any{"ferry.function": "sink", "ferry.message.id": "batch:" + ids[0].(string) + "+2", "ferry.attempt": 1})
	checkAttrs(t, backend, map[string]any{"http.request.method": "POST", "http.response.status_code": 200})
	if tps := fn.traceParents(); len(tps) != 1 || tps[0] != backend.TraceParent() {
		t.Errorf("the function got traceparents %q, want the backend span's %q", tps, backend.TraceParent())
	}
}
