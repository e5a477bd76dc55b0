package assemble

import (
	"io"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/config"
	kafkasource "github.com/ferrydev/ferry/poller/kafka"
	"github.com/ferrydev/ferry/poller/rabbitmq"
	"github.com/ferrydev/ferry/poller/redisstream"
	"github.com/ferrydev/ferry/poller/rocketmq"
	kafkasink "github.com/ferrydev/ferry/sinks/kafka"
	"github.com/ferrydev/ferry/sinks/webhook"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func parse(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("test.yaml", []byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestEveryConfigKindIsWired: each kind config accepts has its entry in
// the kinds table (a source builder for each source kind, a sink builder
// for each destination kind), and the table has no kind config lacks.
func TestEveryConfigKindIsWired(t *testing.T) {
	for _, name := range config.SourceKinds() {
		if kinds[name].source == nil && !kinds[name].timer {
			t.Errorf("source kind %q has no source builder in kinds", name)
		}
	}
	for _, name := range config.SinkKinds() {
		if kinds[name].sink == nil {
			t.Errorf("destination kind %q has no sink builder in kinds", name)
		}
	}
	for name := range kinds {
		if !slices.Contains(config.SourceKinds(), name) && !slices.Contains(config.SinkKinds(), name) {
			t.Errorf("kinds has %q, which config does not know", name)
		}
	}
}

// TestSourcesByKind: a trigger's source is the adapter of its kind, built
// from the kind's typed config (nothing connects yet).
func TestSourcesByKind(t *testing.T) {
	cfg := parse(t, `
tenants: [ { name: t, api_keys: [k] } ]
functions: [ { name: f, tenant: t, backend: { http: { url: "http://127.0.0.1:1/" } } } ]
triggers:
  - { name: k, function: f, source: { kafka: { brokers: ["127.0.0.1:1"], topic: a, group: g } } }
  - { name: m, function: f, source: { rocketmq: { nameservers: ["127.0.0.1:1"], topic: a, group: g } } }
  - { name: r, function: f, source: { rabbitmq: { url: "amqp://127.0.0.1:1/", queue: q } } }
  - { name: s, function: f, source: { redis: { url: "redis://127.0.0.1:1/0", stream: s } } }
`)
	want := []reflect.Type{
		reflect.TypeFor[*kafkasource.Source](), reflect.TypeFor[*rocketmq.Source](),
		reflect.TypeFor[*rabbitmq.Source](), reflect.TypeFor[*redisstream.Source](),
	}
	for i := range cfg.Triggers {
		src, err := buildSource(&cfg.Triggers[i], discard)
		if err != nil {
			t.Fatalf("trigger %s: %v", cfg.Triggers[i].Name, err)
		}
		if got := reflect.TypeOf(src); got != want[i] {
			t.Errorf("trigger %s: source %v, want %v", cfg.Triggers[i].Name, got, want[i])
		}
	}
}

// TestDestinations: every destination has one timeout, the configured one
// (config.DefaultWebhookTimeout when unset), applied by the dispatcher; the
// log sink has none. MQ destinations on the same brokers share one
// producer, whatever the order of the addresses.
func TestDestinations(t *testing.T) {
	cfg := parse(t, `
tenants: [ { name: t, api_keys: [k] } ]
functions:
  - name: f
    tenant: t
    backend: { http: { url: "http://127.0.0.1:1/" } }
    destinations:
      on_success:
        - { webhook: { url: "http://127.0.0.1:1/hook", secret: "`+secret+`", timeout: 3s } }
        - { webhook: { url: "http://127.0.0.1:1/hook", secret: "`+secret+`" } }
        - { kafka: { brokers: ["127.0.0.1:1", "127.0.0.1:2"], topic: a, timeout: 2s } }
        - { kafka: { brokers: ["127.0.0.1:2", "127.0.0.1:1"], topic: b } }
        - { log: {} }
`)
	prods := NewProducers()
	t.Cleanup(func() { _ = prods.Close() })
	fns, err := Functions(cfg, nil, prods, discard)
	if err != nil {
		t.Fatal(err)
	}
	dests := fns[0].OnSuccess
	wantTimeouts := []time.Duration{3 * time.Second, config.DefaultWebhookTimeout, 2 * time.Second, config.DefaultWebhookTimeout, 0}
	for i, d := range dests {
		if d.Timeout != wantTimeouts[i] {
			t.Errorf("%s (%s): timeout %v, want %v", d.Name, d.Kind, d.Timeout, wantTimeouts[i])
		}
	}
	if _, ok := dests[0].Sink.(*webhook.Sink); !ok {
		t.Errorf("on_success[0]: sink %T, want a webhook sink", dests[0].Sink)
	}
	if _, ok := dests[2].Sink.(*kafkasink.Sink); !ok {
		t.Errorf("on_success[2]: sink %T, want a kafka sink", dests[2].Sink)
	}
	if n := prods.Open(); n != 1 {
		t.Errorf("%d producers open, want 1 shared by both kafka destinations", n)
	}
	if err := prods.Close(); err != nil || prods.Open() != 0 {
		t.Errorf("Close = %v, %d producers still open", err, prods.Open())
	}
}

// TestUnknownKind: a destination or source of no kind fails to build.
func TestUnknownKind(t *testing.T) {
	if _, err := buildSink(config.Destination{}, NewProducers(), discard); err == nil || !strings.Contains(err.Error(), "no sink configured") {
		t.Errorf("buildSink of no kind: %v", err)
	}
	if _, err := buildSource(&config.Trigger{}, discard); err == nil || !strings.Contains(err.Error(), "no source configured") {
		t.Errorf("buildSource of no kind: %v", err)
	}
}
