package assemble

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/sinks"
)

// kinds is where a kind of trigger source or destination is registered:
// one entry per kind, keyed by its name in ferry.yaml, wiring the kind's
// typed config to its adapters. Triggers and Functions never switch on
// kinds; they look them up here.
//
// Adding a broker (say "nats") touches only what is its own plus this
// table:
//   - config/nats.go: its typed source and sink configs with their
//     defaults and validation, and a field in config.Source and in
//     config.Destination (the field is config's registration: see
//     config/kinds.go);
//   - poller/nats and sinks/nats: the adapters, and internal/brokers/nats
//     for what they share (connection config, naming, client logging);
//   - internal/assemble/nats.go: its build functions, and one entry below.
//
// TestEveryConfigKindIsWired fails when a config kind has no entry.
var kinds = map[string]kind{
	"webhook":  {sink: sinkOf(webhookSink)},
	"log":      {sink: sinkOf(logSink)},
	"kafka":    {source: sourceOf(kafkaSource), sink: sinkOf(kafkaSink)},
	"rocketmq": {source: sourceOf(rocketmqSource), sink: sinkOf(rocketmqSink)},
	"rabbitmq": {source: sourceOf(rabbitmqSource), sink: sinkOf(rabbitmqSink)},
	"redis":    {source: sourceOf(redisSource), sink: sinkOf(redisSink)},
	"timer":    {timer: true},
}

// kind builds the adapters of one kind.
type kind struct {
	// source builds the trigger source of t; nil when the kind is not a
	// trigger source.
	source func(t *config.Trigger, log *slog.Logger) (poller.Source, error)
	// sink builds the sink of a destination of the kind; MQ sinks share
	// one producer per connection through prods. Nil when the kind is not
	// a destination.
	sink func(c config.SinkConfig, prods *Producers, log *slog.Logger) (sinks.Sink, error)
	// timer marks the timer trigger source: no broker, built by Timers.
	timer bool
}

// sourceOf adapts a source builder taking the kind's typed config.
func sourceOf[C config.SourceConfig](build func(c C, t *config.Trigger, log *slog.Logger) (poller.Source, error)) func(*config.Trigger, *slog.Logger) (poller.Source, error) {
	return func(t *config.Trigger, log *slog.Logger) (poller.Source, error) {
		c, ok := t.Source.Config().(C)
		if !ok {
			return nil, fmt.Errorf("source %s: config is a %T", t.Source.Kind(), t.Source.Config())
		}
		return build(c, t, log)
	}
}

// sinkOf adapts a sink builder taking the kind's typed config.
func sinkOf[C config.SinkConfig](build func(c C, prods *Producers, log *slog.Logger) (sinks.Sink, error)) func(config.SinkConfig, *Producers, *slog.Logger) (sinks.Sink, error) {
	return func(c config.SinkConfig, prods *Producers, log *slog.Logger) (sinks.Sink, error) {
		typed, ok := c.(C)
		if !ok {
			return nil, fmt.Errorf("sink config is a %T", c)
		}
		return build(typed, prods, log)
	}
}

// buildSource builds the broker adapter of a trigger.
func buildSource(t *config.Trigger, log *slog.Logger) (poller.Source, error) {
	k := kinds[t.Source.Kind()]
	if k.source == nil {
		return nil, errors.New("no source configured")
	}
	return k.source(t, log)
}

// buildSink builds the sink of a destination.
func buildSink(d config.Destination, prods *Producers, log *slog.Logger) (sinks.Sink, error) {
	k := kinds[d.Kind()]
	if k.sink == nil {
		return nil, errors.New("no sink configured")
	}
	return k.sink(d.Config(), prods, log)
}
