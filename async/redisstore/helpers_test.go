package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/ferrytest"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// testClient connects to the test Redis (test/brokers/up.sh starts it).
func testClient(t testing.TB) redis.UniversalClient {
	t.Helper()
	brokers.Require(t, brokers.Redis)
	opt, err := redis.ParseURL(brokers.Addr(brokers.Redis))
	if err != nil {
		t.Fatal(err)
	}
	return redis.NewClient(opt)
}

// testPrefix is a fresh prefix whose keys are deleted when the test ends.
func testPrefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "ferrytest-" + hex.EncodeToString(b)
	t.Cleanup(func() { ferrytest.DeleteRedisPrefix(t, brokers.Addr(brokers.Redis), prefix) })
	return prefix
}

// openTest opens a queue on the test Redis under opts (a fresh prefix
// unless opts has one).
func openTest(t testing.TB, opts Options) *Queue {
	t.Helper()
	if opts.Prefix == "" {
		opts.Prefix = testPrefix(t)
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := Open(ctx, testClient(t), opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}
