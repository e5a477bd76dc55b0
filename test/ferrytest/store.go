package ferrytest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/test/brokers"
)

// StoreEnv names the environment variable that runs the end-to-end suites
// on another task store: FERRY_TEST_STORE=redis puts every process that
// the suite starts on the embedded store ({{data}}) on the test Redis
// instead, under a prefix of its own (kept across restarts of the
// process, deleted when the test ends). The suite then checks the same
// contracts on the Redis store.
const StoreEnv = "FERRY_TEST_STORE"

// embeddedStore is the store section the suites write.
const embeddedStore = `store: { embedded: { path: "{{data}}" } }`

// storeSection rewrites cfg's store section for the store FERRY_TEST_STORE
// chooses; it returns cfg unchanged by default.
func storeSection(t testing.TB, cfg string) string {
	t.Helper()
	switch os.Getenv(StoreEnv) {
	case "", "embedded":
		return cfg
	case "redis":
	default:
		t.Fatalf("%s=%q: want embedded or redis", StoreEnv, os.Getenv(StoreEnv))
	}
	if !strings.Contains(cfg, embeddedStore) {
		return cfg
	}
	brokers.Require(t, brokers.Redis)
	url := brokers.Addr(brokers.Redis)
	prefix := RedisPrefix(t)
	return strings.ReplaceAll(cfg, embeddedStore, fmt.Sprintf("store: { redis: { url: %q, prefix: %q } }", url, prefix))
}

// RedisPrefix returns a fresh key prefix on the test Redis whose keys are
// deleted when the test ends.
func RedisPrefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "e2e-" + hex.EncodeToString(b)
	t.Cleanup(func() { DeleteRedisPrefix(t, brokers.Addr(brokers.Redis), prefix) })
	return prefix
}

// DeleteRedisPrefix deletes every key of a Ferry store prefix.
func DeleteRedisPrefix(t testing.TB, url, prefix string) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Logf("ferrytest: %v", err)
		return
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, pattern := range []string{"{" + prefix + "}*", "{" + prefix + ":*"} {
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		var ks []string
		for iter.Next(ctx) {
			ks = append(ks, iter.Val())
			if len(ks) == 1000 {
				_ = rdb.Del(ctx, ks...).Err()
				ks = ks[:0]
			}
		}
		if len(ks) > 0 {
			_ = rdb.Del(ctx, ks...).Err()
		}
	}
}
