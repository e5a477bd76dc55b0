package kafka

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	brokerkafka "github.com/ferrydev/ferry/internal/brokers/kafka"
)

// Start positions for a consumer group that has no committed offsets yet.
const (
	// StartEarliest makes a new group begin at the oldest retained message.
	StartEarliest = "earliest"
	// StartLatest makes a new group begin after the newest message. The
	// Source commits that position for every partition on Connect, so
	// messages produced while it is down are not skipped (kafka-go #904,
	// #1319).
	StartLatest = "latest"
)

// Defaults applied by New to zero Config fields.
const (
	// CommitIntervalDefault is how often settled offsets are committed.
	CommitIntervalDefault = 100 * time.Millisecond
	// CommitIntervalMin is the shortest accepted CommitInterval.
	CommitIntervalMin = time.Millisecond
)

// Config configures a Kafka Source.
type Config struct {
	// Brokers are the bootstrap addresses (host:port). Required.
	Brokers []string
	// Topic is the topic to consume. Required.
	Topic string
	// Group is the consumer group. Required.
	Group string
	// Start is where a NEW group begins: "earliest" or "latest". A group
	// with committed offsets always resumes from them. Defaults to
	// "earliest".
	Start string
	// CommitInterval is how often offsets settled contiguously are
	// committed. Close commits once more. Defaults to 100ms.
	CommitInterval time.Duration
	// Logger receives warnings (failed commits, connection errors) and, at
	// debug level, kafka-go's own log. Defaults to slog.Default().
	Logger *slog.Logger
}

// withDefaults returns cfg with zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.Start == "" {
		cfg.Start = StartEarliest
	}
	if cfg.CommitInterval == 0 {
		cfg.CommitInterval = CommitIntervalDefault
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// validate names every invalid field.
func (cfg Config) validate() error {
	errs := brokerkafka.CheckBrokers(cfg.Brokers)
	if cfg.Topic == "" {
		errs = append(errs, errors.New("topic: required"))
	}
	if cfg.Group == "" {
		errs = append(errs, errors.New("group: required"))
	}
	if cfg.Start != StartEarliest && cfg.Start != StartLatest {
		errs = append(errs, fmt.Errorf("start: %q is not %q or %q", cfg.Start, StartEarliest, StartLatest))
	}
	if cfg.CommitInterval < CommitIntervalMin {
		errs = append(errs, fmt.Errorf("commit_interval: %v is shorter than %v", cfg.CommitInterval, CommitIntervalMin))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kafka source config: %w", err)
	}
	return nil
}
