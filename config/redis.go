package config

import (
	"fmt"
	"time"
)

// Redis source defaults.
const (
	DefaultRedisClaimIdle = 30 * time.Second
	DefaultRedisGroup     = "ferry"
)

// RedisSource reads a stream with a consumer group.
type RedisSource struct {
	URL    string `yaml:"url"`
	Stream string `yaml:"stream"`
	// Group defaults to "ferry".
	Group string `yaml:"group"`
	// Consumer names this process in the group. Defaults to host-pid.
	Consumer string `yaml:"consumer"`
	// ClaimIdle: entries pending longer than this with a dead consumer are
	// claimed (XAUTOCLAIM). Defaults to 30s.
	ClaimIdle Duration `yaml:"claim_idle"`
}

func (s *RedisSource) applyDefaults(*Trigger) {
	setDefault(&s.Group, DefaultRedisGroup)
	setDefault(&s.ClaimIdle, Duration(DefaultRedisClaimIdle))
}

func (s *RedisSource) validate(v *validator, p string) {
	v.brokerURL(p+".url", s.URL, "redis", "rediss")
	v.required(p+".stream", s.Stream)
}

// RedisSink appends outcomes to a Redis stream (XADD): field `data` is
// the outcome JSON, `ferry-hops` and `traceparent` are fields too.
type RedisSink struct {
	URL    string `yaml:"url"`
	Stream string `yaml:"stream"`
	// MaxLen trims the stream to about this many entries (XADD MAXLEN ~);
	// 0 keeps every entry.
	MaxLen  int64    `yaml:"maxlen"`
	Timeout Duration `yaml:"timeout"`
	Retry   Retry    `yaml:"retry"`
}

func (r *RedisSink) delivery() (*Duration, *Retry) { return &r.Timeout, &r.Retry }
func (*RedisSink) applyDefaults()                  {}

func (r *RedisSink) validate(v *validator, p string) {
	v.brokerURL(p+".url", r.URL, "redis", "rediss")
	v.required(p+".stream", r.Stream)
	if r.MaxLen < 0 {
		v.report(p+".maxlen", nil, "must not be negative")
	}
}

func (r *RedisSink) feeds(s Source) (string, bool) {
	if s.Redis == nil {
		return "", false
	}
	if r.Stream == s.Redis.Stream && sameServer(r.URL, s.Redis.URL) {
		return fmt.Sprintf("to redis stream %q", r.Stream), true
	}
	return "", true
}
