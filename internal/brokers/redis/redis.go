// Package redis holds what Ferry's Redis Streams trigger source
// (poller/redisstream) and destination (sinks/redis) share: parsing the
// Redis URL without letting its credentials into errors. Neither direction
// imports the other.
package redis

import (
	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/internal/redact"
)

// ParseURL parses a Redis URL ("redis://user:pass@host:6379/0",
// "rediss://...") with go-redis's ParseURL, whose query options (such as
// dial_timeout or max_retries) apply. Its error never holds the
// credentials.
func ParseURL(raw string) (*redis.Options, error) {
	return redact.ParseURL(raw, redis.ParseURL)
}
