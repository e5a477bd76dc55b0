package assemble

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/async/embedded"
	"github.com/ferrydev/ferry/async/redisstore"
	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/internal/redact"
	"github.com/ferrydev/ferry/wire"
)

// Store opens the task store the config's store section chooses; the
// Server sees only async.Queue (and async.Upkeeper when the store has
// background work), so another store plugs in here alone. clock is the
// node's clock (nil: time.Now).
func Store(cfg *config.Config, clock func() time.Time, log *slog.Logger) (async.Queue, error) {
	c := cfg.Store
	switch {
	case c.Embedded != nil:
		free, err := config.ParseFreeSpace(c.Embedded.MinFree)
		if err != nil {
			return nil, fmt.Errorf("store.embedded.min_free: %w", err)
		}
		q, err := embedded.Open(c.Embedded.Path, embedded.Options{
			Retention: c.Retention.D(), Now: clock, Logger: log,
			Reserve: embedded.Reserve{
				Bytes: free.Bytes, Percent: free.Percent,
				Off: c.Embedded.MinFree != "" && free.Bytes == 0 && free.Percent == 0,
			},
			StrictWAL: c.Embedded.WALRecovery == config.WALStrict,
		})
		if err != nil {
			if strings.Contains(err.Error(), c.Embedded.Path) {
				return nil, fmt.Errorf("open store: %w", err)
			}
			return nil, fmt.Errorf("open store %s: %w", c.Embedded.Path, err)
		}
		return q, nil
	case c.Redis != nil:
		return redisStore(cfg, clock, log)
	}
	return nil, errors.New("no store configured")
}

// Redis client timeouts: a call to an unreachable or hung Redis fails
// within about a second (submit then answers 503), and a write is never
// sent twice by the client itself (scripts are not all idempotent).
const (
	redisDialTimeout = 500 * time.Millisecond
	redisIOTimeout   = 800 * time.Millisecond
)

// limits are the tenants' and functions' limits as the Redis store takes
// them.
func limits(cfg *config.Config) (map[string]redisstore.Limit, map[wire.Lane]redisstore.Limit) {
	tenants, functions := map[string]redisstore.Limit{}, map[wire.Lane]redisstore.Limit{}
	for _, t := range cfg.Tenants {
		tenants[t.Name] = redisstore.Limit{MaxConcurrency: t.MaxConcurrency, Rate: t.Rate, Burst: t.Burst}
	}
	for _, f := range cfg.Functions {
		functions[wire.Lane{Tenant: f.Tenant, Function: f.Name}] = redisstore.Limit{MaxConcurrency: f.MaxConcurrency, Rate: f.Rate, Burst: f.Burst}
	}
	return tenants, functions
}

func redisStore(cfg *config.Config, clock func() time.Time, log *slog.Logger) (async.Queue, error) {
	rdb, err := RedisClient(cfg.Store.Redis)
	if err != nil {
		return nil, err
	}
	opts := redisstore.Options{Prefix: cfg.Store.Redis.Prefix, Retention: cfg.Store.Retention.D(), Clock: clock, Logger: log}
	opts.Tenants, opts.Functions = limits(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := redisstore.Open(ctx, rdb, opts)
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("open store redis %s: %w", StoreName(cfg.Store), err)
	}
	return q, nil
}

// Shared is the flow-control state the nodes of a service share beside
// the store: nil fields (the embedded store) keep it in this process.
type Shared struct {
	Rates     dispatcher.RateStore    // the dispatcher's buckets
	Admission dispatcher.RateStore    // the API's buckets (429 at submit)
	Traces    dispatcher.TraceCounter // the loop guard's trace counts
	close     func() error
}

// Close releases Shared's connection.
func (s *Shared) Close() error {
	if s.close == nil {
		return nil
	}
	return s.close()
}

// SharedState returns what the store section makes shared: on
// store.redis, rates, admission rates and trace counts in Redis (on a
// connection of their own); nothing on the embedded store.
func SharedState(cfg *config.Config) (*Shared, error) {
	if cfg.Store.Redis == nil {
		return &Shared{}, nil
	}
	rdb, err := RedisClient(cfg.Store.Redis)
	if err != nil {
		return nil, err
	}
	prefix := prefixOf(cfg.Store.Redis)
	tenants, functions := limits(cfg)
	traces := redisstore.NewTraces(rdb, prefix, cfg.LoopGuard.TraceWindow.D())
	return &Shared{
		Rates:     redisstore.NewRates(rdb, prefix, tenants, functions),
		Admission: redisstore.NewAdmissionRates(rdb, prefix, tenants, functions),
		Traces:    traces,
		close:     func() error { return errors.Join(traces.Close(), rdb.Close()) },
	}, nil
}

// RedisClient makes the go-redis client of store.redis: a plain client
// from url (redis:// or rediss://), or a failover client through
// Sentinel.
func RedisClient(c *config.RedisStore) (redis.UniversalClient, error) {
	if c.Sentinel != nil {
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: c.Sentinel.Master, SentinelAddrs: c.Sentinel.Addrs,
			SentinelUsername: c.Sentinel.Username, SentinelPassword: c.Sentinel.Password,
			Username: c.Sentinel.Username, Password: c.Sentinel.Password,
			DialTimeout: redisDialTimeout, ReadTimeout: redisIOTimeout, WriteTimeout: redisIOTimeout,
			PoolTimeout: redisIOTimeout, MaxRetries: -1,
		}), nil
	}
	opt, err := redact.ParseURL(c.URL, redis.ParseURL)
	if err != nil {
		return nil, fmt.Errorf("store.redis.url: %w", err)
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = redisDialTimeout, redisIOTimeout, redisIOTimeout
	opt.PoolTimeout, opt.MaxRetries = redisIOTimeout, -1
	return redis.NewClient(opt), nil
}

// StoreName describes the configured store for the log (no secrets).
func StoreName(c config.Store) string {
	switch {
	case c.Embedded != nil:
		return "embedded:" + c.Embedded.Path
	case c.Redis != nil && c.Redis.Sentinel != nil:
		return "redis-sentinel:" + c.Redis.Sentinel.Master + " prefix " + prefixOf(c.Redis)
	case c.Redis != nil:
		return "redis:" + redact.URL(c.Redis.URL) + " prefix " + prefixOf(c.Redis)
	}
	return "none"
}

func prefixOf(c *config.RedisStore) string {
	if c.Prefix == "" {
		return redisstore.DefaultPrefix
	}
	return c.Prefix
}
