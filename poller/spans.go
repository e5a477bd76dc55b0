package poller

import (
	"context"
	"net/url"
	"path"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/wire"
)

// SpanBatch is the span of one batch of a trigger (one message at batch
// size 1), recorded while a span exporter is configured: from the moment
// the batch is collected, through its invocations (their ferry.attempt
// spans are its children), retries and outcome deliveries, to the commit
// of its messages.
//
// Its parent is the first message's traceparent when it has a valid one,
// so the producer's trace goes on through Ferry, and the trace id the
// function receives is the one it gets with export off (the loop guard
// counts invocations per trace). Every other message that carries a
// traceparent of another span is a link (at most maxLinks).
const SpanBatch = "ferry.trigger.batch"

// Attributes of SpanBatch besides ferry.trigger, ferry.tenant and
// ferry.function.
const (
	attrSystem      = attribute.Key("messaging.system")
	attrOperation   = attribute.Key("messaging.operation.type")
	attrDestination = attribute.Key("messaging.destination.name")
	attrCount       = attribute.Key("messaging.batch.message_count")
	attrMessageID   = attribute.Key("messaging.message.id")
	attrMessageIDs  = attribute.Key("ferry.message.ids")
	attrPartition   = attribute.Key("messaging.destination.partition.id")
	attrKafkaOffset = attribute.Key("messaging.kafka.offset")
	attrFirstOffset = attribute.Key("ferry.offset.first")
	attrLastOffset  = attribute.Key("ferry.offset.last")
)

// maxIDs bounds ferry.message.ids; maxLinks bounds the links of a batch
// span (the SDK's default limit).
const (
	maxIDs   = 64
	maxLinks = 128
)

// noEnd ends no span.
func noEnd() {}

// traceBatch starts the batch span of items in ctx when the dispatcher
// records spans, and returns the context the batch runs in and what ends
// the span; with spans off it returns ctx and a no-op, at no cost.
func (p *Poller) traceBatch(ctx context.Context, items []*item) (context.Context, func()) {
	if p.tracer == nil {
		return ctx, noEnd
	}
	prop := propagation.TraceContext{}
	first := items[0].m
	parent := ctx
	if tp := first.Headers[wire.HeaderTraceParent]; tp != "" {
		parent = prop.Extract(ctx, propagation.MapCarrier{wire.HeaderTraceParent: tp})
	}
	psc := trace.SpanContextFromContext(parent)
	var links []trace.Link
	for _, it := range items[1:] {
		tp := it.m.Headers[wire.HeaderTraceParent]
		if tp == "" || len(links) == maxLinks {
			continue
		}
		sc := trace.SpanContextFromContext(prop.Extract(context.Background(), propagation.MapCarrier{wire.HeaderTraceParent: tp}))
		if sc.IsValid() && !sc.Equal(psc) {
			links = append(links, trace.Link{SpanContext: sc})
		}
	}
	ctx, span := p.tracer.Start(parent, SpanBatch, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(links...), trace.WithAttributes(p.batchAttributes(items)...))
	return ctx, func() { span.End() }
}

// batchAttributes describe a batch: the trigger, broker, destination,
// message ids and, when every message is in one partition whose ids end
// in an integer offset (Kafka, RocketMQ), the partition and the first and
// last offsets.
func (p *Poller) batchAttributes(items []*item) []attribute.KeyValue {
	cfg := &p.cfg
	first := items[0].m
	attrs := []attribute.KeyValue{
		dispatcher.AttrTrigger.String(cfg.Name), dispatcher.AttrTenant.String(cfg.Function.Lane.Tenant),
		dispatcher.AttrFunction.String(cfg.Function.Lane.Function),
		attrSystem.String(cfg.Kind), attrOperation.String("process"), attrCount.Int(len(items)),
	}
	if dest := destinationOf(first.Source); dest != "" {
		attrs = append(attrs, attrDestination.String(dest))
	}
	ids := make([]string, 0, min(len(items), maxIDs))
	for _, it := range items[:min(len(items), maxIDs)] {
		ids = append(ids, it.m.ID)
	}
	attrs = append(attrs, attrMessageIDs.StringSlice(ids))
	if len(items) == 1 {
		attrs = append(attrs, attrMessageID.String(first.ID))
	}
	part, lo, ok := position(first)
	hi := lo
	for _, it := range items[1:] {
		if !ok {
			break
		}
		var pt string
		pt, hi, ok = position(it.m)
		ok = ok && pt == part && it.m.Scope == first.Scope
	}
	if ok {
		attrs = append(attrs, attrPartition.String(part), attrFirstOffset.Int64(lo), attrLastOffset.Int64(hi))
		if cfg.Kind == "kafka" {
			attrs = append(attrs, attrKafkaOffset.Int64(lo))
		}
	}
	return attrs
}

// position returns the partition (the scope's last part) and offset of m
// when its id is its scope, '/' and an integer offset: Kafka's
// "kafka:orders/0/42" in scope "kafka:orders/0", RocketMQ's likewise.
func position(m *Message) (partition string, offset int64, ok bool) {
	rest, found := strings.CutPrefix(m.ID, m.Scope+"/")
	if !found || m.Scope == "" {
		return "", 0, false
	}
	off, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return "", 0, false
	}
	return m.Scope[strings.LastIndexByte(m.Scope, '/')+1:], off, true
}

// destinationOf returns the topic, queue or stream a message source URI
// names ("kafka://127.0.0.1:9092/orders": "orders"), or "".
func destinationOf(source string) string {
	u, err := url.Parse(source)
	if err != nil || u.Path == "" || u.Path == "/" {
		return ""
	}
	return path.Base(u.Path)
}
