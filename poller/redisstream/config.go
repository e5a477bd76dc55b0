package redisstream

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	brokerredis "github.com/ferrydev/ferry/internal/brokers/redis"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultGroup is the consumer group used when Config.Group is empty.
	DefaultGroup = "ferry"
	// DefaultCount is the XREADGROUP / XAUTOCLAIM COUNT.
	DefaultCount = 100
	// DefaultBlock is how long one XREADGROUP BLOCK waits for new entries.
	DefaultBlock = 2 * time.Second
	// DefaultClaimIdle is how long an entry must sit unacknowledged in a
	// (presumably dead) consumer's pending list before it is claimed.
	DefaultClaimIdle = 30 * time.Second
	// MinClaimIdle is the smallest ClaimIdle accepted: below it, live
	// consumers would steal each other's in-flight entries.
	MinClaimIdle = 100 * time.Millisecond
)

// Start positions for a consumer group this Source creates.
const (
	// StartEarliest creates the group at "0": every entry already in the
	// stream is delivered.
	StartEarliest = "earliest"
	// StartLatest creates the group at "$": only entries added afterwards
	// are delivered.
	StartLatest = "latest"
)

// Config configures a Source. Zero fields take the documented defaults.
type Config struct {
	// URL is the Redis URL, e.g. "redis://127.0.0.1:6379/0" or
	// "rediss://user:pass@host:6380/0" (parsed by redis.ParseURL). Required.
	URL string
	// Stream is the stream key read. Required.
	Stream string
	// Group is the consumer group. Defaults to DefaultGroup ("ferry").
	Group string
	// Consumer is this process's consumer name within the group. A restart
	// with the same name resumes its own pending entries at once; under a
	// new name they are claimed after ClaimIdle instead. Set a stable name
	// (a pod or host name) to resume at once. Consumers are never deleted
	// (that would drop their pending entries): an operator may remove old
	// names with 0 pending entries (XGROUP DELCONSUMER). Defaults to
	// "<hostname>-<pid>", new on every process start.
	Consumer string
	// Start is where the group begins when this Source creates it:
	// StartEarliest ("0") or StartLatest ("$"). An existing group keeps its
	// position. Defaults to StartEarliest.
	Start string
	// Count is the most entries one XREADGROUP or XAUTOCLAIM returns.
	// Defaults to DefaultCount (100).
	Count int
	// Block is how long one XREADGROUP waits for new entries before Read
	// looks again for claimable or redelivered entries. Defaults to
	// DefaultBlock (2s).
	Block time.Duration
	// ClaimIdle: entries pending longer than this in another consumer's
	// pending list are claimed with XAUTOCLAIM (that consumer is presumed
	// dead). This Source keeps its own in-flight entries from looking idle
	// by touching them every ClaimIdle/3. Defaults to DefaultClaimIdle (30s).
	ClaimIdle time.Duration
	// ClaimInterval is how often XAUTOCLAIM runs. Defaults to ClaimIdle/2.
	ClaimInterval time.Duration
	// Logger receives warnings (failed XACKs, deleted entries). Defaults to
	// slog.Default().
	Logger *slog.Logger
}

// withDefaults returns cfg with zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Consumer == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "ferry"
		}
		cfg.Consumer = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if cfg.Start == "" {
		cfg.Start = StartEarliest
	}
	if cfg.Count == 0 {
		cfg.Count = DefaultCount
	}
	if cfg.Block == 0 {
		cfg.Block = DefaultBlock
	}
	if cfg.ClaimIdle == 0 {
		cfg.ClaimIdle = DefaultClaimIdle
	}
	if cfg.ClaimInterval == 0 {
		cfg.ClaimInterval = cfg.ClaimIdle / 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return cfg
}

// validate checks a defaulted Config and returns the parsed Redis options.
// Every problem names its field.
func (cfg Config) validate() (*redis.Options, error) {
	var errs []error
	var opt *redis.Options
	if cfg.URL == "" {
		errs = append(errs, invalid("URL", "is required"))
	} else {
		var err error
		if opt, err = brokerredis.ParseURL(cfg.URL); err != nil {
			errs = append(errs, invalid("URL", "%w", err))
		}
	}
	if cfg.Stream == "" {
		errs = append(errs, invalid("Stream", "is required"))
	}
	if cfg.Start != StartEarliest && cfg.Start != StartLatest {
		errs = append(errs, invalid("Start", "%q is neither %q nor %q", cfg.Start, StartEarliest, StartLatest))
	}
	if cfg.Count < 0 {
		errs = append(errs, invalid("Count", "%d is negative", cfg.Count))
	}
	if cfg.Block < time.Millisecond {
		errs = append(errs, invalid("Block", "%v is shorter than 1ms", cfg.Block))
	}
	if cfg.ClaimIdle < MinClaimIdle {
		errs = append(errs, invalid("ClaimIdle", "%v is shorter than %v", cfg.ClaimIdle, MinClaimIdle))
	}
	if cfg.ClaimInterval < 10*time.Millisecond {
		errs = append(errs, invalid("ClaimInterval", "%v is shorter than 10ms", cfg.ClaimInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("redisstream: invalid config: %w", err)
	}
	return opt, nil
}

// invalid is a validation error naming the Config field.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf(field+" "+format, args...)
}
