package redis_test

import (
	"log/slog"
	"testing"
	"time"

	"github.com/ferrydev/ferry/sinks/redis"
	"github.com/ferrydev/ferry/sinks/sinktest"
)

// opTimeout bounds each Redis call the tests make.
const opTimeout = 10 * time.Second

// newClient returns a Client on url, closed in t.Cleanup.
func newClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	c, err := redis.NewClient(redis.ClientConfig{URL: url, Logger: sinktest.Logger(t, slog.LevelWarn)})
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
