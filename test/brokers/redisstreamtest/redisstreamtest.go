// Package redisstreamtest runs the trigger conformance suite (and the
// redisstream tests) against a real Redis: it implements brokers.Broker
// with one uniquely named stream per NewTopic, deleted when the test ends.
package redisstreamtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/test/brokers"
)

// ClaimIdle is the claim_idle of SourceYAML, and the ClaimIdle the trigger
// tests give their Sources: short, so entries left by a closed Source are
// claimed by the next one quickly.
const ClaimIdle = 2 * time.Second

var (
	_ brokers.Broker = (*Broker)(nil)
	_ brokers.Topic  = (*Topic)(nil)
)

// Broker is the Redis at brokers.Addr("redis"): FERRY_REDIS, by default
// redis://127.0.0.1:6379/0.
type Broker struct{}

// New returns the Redis broker under test.
func New() *Broker { return &Broker{} }

// Name is "redis", as in the trigger config.
func (*Broker) Name() string { return "redis" }

// URL is the Redis URL the Sources use.
func (*Broker) URL() string { return brokers.Addr(brokers.Redis) }

// NewTopic creates a fresh stream (with MKSTREAM semantics: the stream
// appears on the first XADD or group creation) named after the test, and
// deletes it in t.Cleanup. scopes is ignored: a stream is one scope.
func (b *Broker) NewTopic(t testing.TB, _ int) brokers.Topic {
	t.Helper()
	brokers.Require(t, brokers.Redis)
	url := b.URL()
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("redisstreamtest: %v", err)
	}
	client := redis.NewClient(opt)
	tp := &Topic{t: t, url: url, name: streamName(t), client: client}
	// Fail now, not in the middle of a test, when Redis does not answer.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Del(ctx, tp.name).Err(); err != nil {
		_ = client.Close()
		t.Fatalf("redisstreamtest: DEL %s: %v", tp.name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := client.Del(ctx, tp.name).Err(); err != nil {
			t.Logf("redisstreamtest: cleanup: DEL %s: %v", tp.name, err)
		}
		_ = client.Close()
	})
	return tp
}

// Topic is one stream.
type Topic struct {
	t      testing.TB
	url    string
	name   string
	client *redis.Client
	n      atomic.Int64 // consumer name counter
}

// Name is the stream key.
func (tp *Topic) Name() string { return tp.name }

// Client is a plain client on the topic's Redis, for tests that write or
// inspect the stream directly.
func (tp *Topic) Client() *redis.Client { return tp.client }

// SourceYAML is the trigger source for this stream and group.
func (tp *Topic) SourceYAML(group string) string {
	return fmt.Sprintf(`{ redis: { url: %q, stream: %s, group: %s, claim_idle: %s } }`, tp.url, tp.name, group, ClaimIdle)
}

// DestinationYAML is this stream as a Ferry destination (an on_success or
// on_failure entry) in flow-style YAML, on the same Redis URL as SourceYAML:
// `{ redis: { url: "redis://ADDR/0", stream: NAME } }`.
func (tp *Topic) DestinationYAML() string {
	return fmt.Sprintf(`{ redis: { url: %q, stream: %s } }`, tp.url, tp.name)
}

// URL is the Redis URL of the stream.
func (tp *Topic) URL() string { return tp.url }

// Fields of an entry Produce writes, the ones Ferry's Redis Streams trigger
// reads the payload and the ordering key from.
const (
	FieldData = "data"
	FieldKey  = "key"
)

// ConsumerName returns a consumer name for group not used before on this
// topic ("<group>-c<n>"), as a restarted Ferry process (new pid) has one:
// what a closed consumer left unacknowledged is claimed by the next after
// ClaimIdle.
func (tp *Topic) ConsumerName(group string) string {
	return fmt.Sprintf("%s-c%d", group, tp.n.Add(1))
}

// Produce appends msgs in order (one pipeline of XADDs, each answered with
// its entry id): field "data" = Payload, "key" = Key when set, then the
// headers as fields.
func (tp *Topic) Produce(t testing.TB, msgs []brokers.Msg) {
	t.Helper()
	if err := tp.produce(msgs); err != nil {
		t.Fatalf("redisstreamtest: produce %d entries to %s: %v", len(msgs), tp.name, err)
	}
}

// ProduceErr is Produce returning its error (for producers running beside
// a broker restart, off the test goroutine).
func (tp *Topic) ProduceErr(msgs []brokers.Msg) error { return tp.produce(msgs) }

func (tp *Topic) produce(msgs []brokers.Msg) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(msgs) > 0 {
		n := min(len(msgs), 500)
		pipe := tp.client.Pipeline()
		cmds := make([]*redis.StringCmd, n)
		for i, m := range msgs[:n] {
			values := []any{FieldData, m.Payload}
			if m.Key != "" {
				values = append(values, FieldKey, m.Key)
			}
			for k, v := range m.Headers {
				values = append(values, k, v)
			}
			cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: tp.name, Values: values})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return fmt.Errorf("XADD: %w", err)
		}
		for _, c := range cmds {
			if c.Val() == "" {
				return errors.New("XADD returned no entry id")
			}
		}
		msgs = msgs[n:]
	}
	return nil
}

// Backlog is how many entries the group has not acknowledged, read from
// Redis: entries after the group's last-delivered-id plus the group's
// pending entries (XPENDING). Before the group exists, every entry.
func (tp *Topic) Backlog(t testing.TB, group string) int64 {
	t.Helper()
	n, err := tp.backlog(group)
	if err != nil {
		t.Fatalf("redisstreamtest: backlog of %s on %s: %v", group, tp.name, err)
	}
	return n
}

func (tp *Topic) backlog(group string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	groups, err := tp.client.XInfoGroups(ctx, tp.name).Result()
	if err != nil && !strings.Contains(err.Error(), "no such key") {
		return 0, fmt.Errorf("XINFO GROUPS: %w", err)
	}
	last := ""
	for _, g := range groups {
		if g.Name == group {
			last = g.LastDeliveredID
		}
	}
	if last == "" {
		return tp.client.XLen(ctx, tp.name).Result()
	}
	var undelivered int64
	for from := "(" + last; ; {
		page, err := tp.client.XRangeN(ctx, tp.name, from, "+", 1000).Result()
		if err != nil {
			return 0, fmt.Errorf("XRANGE: %w", err)
		}
		undelivered += int64(len(page))
		if len(page) < 1000 {
			break
		}
		from = "(" + page[len(page)-1].ID
	}
	pending, err := tp.client.XPending(ctx, tp.name, group).Result()
	if err != nil {
		return 0, fmt.Errorf("XPENDING: %w", err)
	}
	return undelivered + pending.Count, nil
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// streamName is "ferry-test-<test name>-<random>".
func streamName(t testing.TB) string {
	name := unsafe.ReplaceAllString(t.Name(), "_")
	if len(name) > 60 {
		name = name[:60]
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("ferry-test-%s-%d-%s", name, os.Getpid(), hex.EncodeToString(b))
}
