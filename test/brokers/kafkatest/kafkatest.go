// Package kafkatest runs Ferry's delivery conformance suite and the Kafka
// source's own tests against a real Kafka broker: it implements
// brokers.Broker and brokers.Topic on unique, per-test topics.
package kafkatest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/ferrydev/ferry/test/brokers"
)

var (
	_ brokers.Broker = (*Broker)(nil)
	_ brokers.Topic  = (*Topic)(nil)
)

// opTimeout bounds each admin / produce / offset call.
const opTimeout = 30 * time.Second

// Broker is the real Kafka broker under test.
type Broker struct {
	// Addr is the bootstrap address.
	Addr string
}

// New returns the Broker at brokers.Addr("kafka"): $FERRY_KAFKA, or
// 127.0.0.1:9092.
func New() *Broker {
	return &Broker{Addr: brokers.Addr(brokers.Kafka)}
}

// Name is "kafka".
func (b *Broker) Name() string { return "kafka" }

func (b *Broker) client() *kafkago.Client {
	return &kafkago.Client{Addr: kafkago.TCP(b.Addr), Timeout: opTimeout,
		Transport: &kafkago.Transport{DialTimeout: 5 * time.Second, ClientID: "ferry-test"}}
}

// NewTopic creates a uniquely named topic with scopes partitions
// (replication 1), waits until every partition has a leader, and deletes
// the topic in t.Cleanup. It fails t (never skips) when Kafka is missing.
func (b *Broker) NewTopic(t testing.TB, scopes int) brokers.Topic {
	return b.CreateTopic(t, scopes)
}

// CreateTopic is NewTopic returning the concrete *Topic.
func (b *Broker) CreateTopic(t testing.TB, scopes int) *Topic {
	t.Helper()
	brokers.Require(t, brokers.Kafka)
	if scopes < 1 {
		scopes = 1
	}
	name := UniqueName(t)
	c := b.client()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	// A broker that just (re)started answers "all brokers fenced" for a
	// moment: retry until the deadline.
	deadline := time.Now().Add(opTimeout)
	for {
		res, err := c.CreateTopics(ctx, &kafkago.CreateTopicsRequest{Topics: []kafkago.TopicConfig{{
			Topic: name, NumPartitions: scopes, ReplicationFactor: 1,
		}}})
		if err == nil {
			err = res.Errors[name]
		}
		if err == nil || errors.Is(err, kafkago.TopicAlreadyExists) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: create topic %s: %v", name, err)
		}
		time.Sleep(200 * time.Millisecond) // polling the broker, not synchronising goroutines
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		// After a broker restart the first request on a pooled connection
		// fails (unexpected EOF): a fresh client, and one retry.
		var err error
		for range 2 {
			var res *kafkago.DeleteTopicsResponse
			res, err = b.client().DeleteTopics(ctx, &kafkago.DeleteTopicsRequest{Topics: []string{name}})
			if err == nil {
				err = res.Errors[name]
			}
			if err == nil {
				break
			}
		}
		if err != nil {
			t.Logf("kafkatest: delete topic %s: %v", name, err)
		}
	})
	tp := &Topic{b: b, name: name, c: c}
	for {
		parts, err := tp.partitions(ctx)
		if err == nil && len(parts) == scopes {
			tp.parts = parts
			return tp
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: topic %s has no leaders for its %d partitions: %v", name, scopes, err)
		}
		time.Sleep(50 * time.Millisecond) // polling the broker's metadata, not synchronising goroutines
	}
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// UniqueName is "ferry-" + t.Name() sanitised + a random suffix: a valid
// topic or group name, different on every call.
func UniqueName(t testing.TB) string {
	n := strings.Trim(unsafeChars.ReplaceAllString(t.Name(), "-"), "-")
	if len(n) > 80 {
		n = n[:80]
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("kafkatest: random: %v", err)
	}
	return "ferry-" + n + "-" + hex.EncodeToString(b[:])
}

// Topic is a topic created by NewTopic.
type Topic struct {
	b     *Broker
	name  string
	c     *kafkago.Client
	parts []int
}

// Name is the topic name.
func (tp *Topic) Name() string { return tp.name }

// Partitions are the topic's partition ids.
func (tp *Topic) Partitions() []int { return tp.parts }

// SourceYAML is `{ kafka: { brokers: ["ADDR"], topic: NAME, group: GROUP } }`.
func (tp *Topic) SourceYAML(group string) string {
	return fmt.Sprintf(`{ kafka: { brokers: [%q], topic: %s, group: %s } }`, tp.b.Addr, tp.name, group)
}

// DestinationYAML is this topic as a Ferry destination (an on_success or
// on_failure entry) in flow-style YAML, on the same broker as SourceYAML:
// `{ kafka: { brokers: ["ADDR"], topic: NAME } }`.
func (tp *Topic) DestinationYAML() string {
	return fmt.Sprintf(`{ kafka: { brokers: [%q], topic: %s } }`, tp.b.Addr, tp.name)
}

// Addr is the bootstrap address of the topic's broker.
func (tp *Topic) Addr() string { return tp.b.Addr }

// Produce writes msgs in order with acks from all in-sync replicas; the Key
// picks the partition (kafka-go's Hash balancer; round robin without a key).
func (tp *Topic) Produce(t testing.TB, msgs []brokers.Msg) {
	t.Helper()
	w := &kafkago.Writer{
		Addr:         kafkago.TCP(tp.b.Addr),
		Topic:        tp.name,
		Balancer:     &kafkago.Hash{},
		RequiredAcks: kafkago.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		BatchSize:    500,
		WriteTimeout: opTimeout,
		MaxAttempts:  10,
		Transport:    &kafkago.Transport{DialTimeout: 5 * time.Second, ClientID: "ferry-test"},
	}
	defer w.Close()
	out := make([]kafkago.Message, len(msgs))
	for i, m := range msgs {
		km := kafkago.Message{Value: m.Payload}
		if m.Key != "" {
			km.Key = []byte(m.Key)
		}
		for k, v := range m.Headers {
			km.Headers = append(km.Headers, kafkago.Header{Key: k, Value: []byte(v)})
		}
		out[i] = km
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := w.WriteMessages(ctx, out...); err != nil {
		t.Fatalf("kafkatest: produce %d messages to %s: %v", len(msgs), tp.name, err)
	}
}

// Backlog is the number of messages the group has not committed, read from
// the broker: per partition, the end offset minus the group's committed
// offset (minus the first offset when the group committed nothing).
func (tp *Topic) Backlog(t testing.TB, group string) int64 {
	t.Helper()
	// Retried: after a broker restart, pooled connections fail once.
	deadline := time.Now().Add(opTimeout)
	for {
		n, err := tp.backlog(group)
		if err == nil {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: backlog of %s for group %s: %v", tp.name, group, err)
		}
		time.Sleep(200 * time.Millisecond) // polling the broker, not synchronising goroutines
	}
}

// Committed returns the group's committed offset per partition (-1: none),
// read from the broker.
func (tp *Topic) Committed(t testing.TB, group string) map[int]int64 {
	t.Helper()
	deadline := time.Now().Add(opTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		c, err := tp.committed(ctx, group)
		cancel()
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("kafkatest: committed offsets of %s: %v", group, err)
		}
		time.Sleep(200 * time.Millisecond) // polling the broker, not synchronising goroutines
	}
}

func (tp *Topic) committed(ctx context.Context, group string) (map[int]int64, error) {
	of, err := tp.c.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{tp.name: tp.parts}})
	if err == nil {
		err = of.Error
	}
	if err != nil {
		return nil, fmt.Errorf("offset fetch: %w", err)
	}
	out := map[int]int64{}
	for _, p := range of.Topics[tp.name] {
		if p.Error != nil {
			return nil, fmt.Errorf("offset fetch of partition %d: %w", p.Partition, p.Error)
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}

func (tp *Topic) backlog(group string) (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	committed, err := tp.committed(ctx, group)
	if err != nil {
		return 0, err
	}
	reqs := make([]kafkago.OffsetRequest, 0, 2*len(tp.parts))
	for _, p := range tp.parts {
		reqs = append(reqs, kafkago.FirstOffsetOf(p), kafkago.LastOffsetOf(p))
	}
	lo, err := tp.c.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{tp.name: reqs}})
	if err != nil {
		return 0, fmt.Errorf("list offsets: %w", err)
	}
	var n int64
	for _, p := range lo.Topics[tp.name] {
		if p.Error != nil {
			return 0, fmt.Errorf("list offsets of partition %d: %w", p.Partition, p.Error)
		}
		from, ok := committed[p.Partition]
		if !ok || from < 0 {
			from = p.FirstOffset
		}
		if d := p.LastOffset - from; d > 0 {
			n += d
		}
	}
	return n, nil
}

func (tp *Topic) partitions(ctx context.Context) ([]int, error) {
	md, err := tp.c.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{tp.name}})
	if err != nil {
		return nil, err
	}
	for _, top := range md.Topics {
		if top.Name != tp.name {
			continue
		}
		if top.Error != nil {
			return nil, top.Error
		}
		var ids []int
		for _, p := range top.Partitions {
			if p.Error != nil || p.Leader.ID < 0 || p.Leader.Host == "" {
				return nil, fmt.Errorf("partition %d has no leader yet", p.ID)
			}
			ids = append(ids, p.ID)
		}
		sort.Ints(ids)
		return ids, nil
	}
	return nil, fmt.Errorf("topic %s not in metadata", tp.name)
}
