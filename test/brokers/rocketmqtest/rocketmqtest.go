// Package rocketmqtest runs Ferry's RocketMQ source against a real broker:
// it implements brokers.Broker and brokers.Topic with uniquely
// named topics created through the client's admin API and deleted when the
// test ends.
package rocketmqtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/admin"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
	"github.com/apache/rocketmq-client-go/v2/rlog"

	"github.com/ferrydev/ferry/test/brokers"
)

// setupTimeout bounds topic creation and its propagation to the name server.
const setupTimeout = 60 * time.Second

// Broker is the RocketMQ broker under test.
type Broker struct {
	// NameServer is the name server address, host:port.
	NameServer string
	// Addr is the broker address where topics are created, host:port.
	Addr string
	// CountBacklog counts what group has not committed on topic (committed
	// vs max offsets of every queue), for Topic.Backlog. The client
	// library keeps those offset queries internal and this package
	// imports none of Ferry's adapters, so a test that needs Backlog
	// passes the RocketMQ trigger's own count (poller/rocketmq.Backlog).
	// Nil: Backlog fails the test.
	CountBacklog func(ctx context.Context, nameServers []string, topic, group string) (int64, error)
}

var _ brokers.Broker = Broker{}

// New returns the test broker at the addresses of test/brokers
// (brokers.Addr("rocketmq") and brokers.RocketMQBrokerAddr()), without
// CountBacklog, and quiets the client library's process-wide logger to
// warnings (its info chatter is several lines a second per queue).
func New() Broker {
	rlog.SetLogLevel("warn")
	return Broker{NameServer: brokers.Addr("rocketmq"), Addr: brokers.RocketMQBrokerAddr()}
}

// Name is "rocketmq".
func (Broker) Name() string { return "rocketmq" }

// NewTopic creates a topic with scopes read and write queues (at least 1),
// waits until the name server routes it, and deletes it (with the %RETRY%
// topics of the groups used on it) in t.Cleanup. It fails the test when the
// broker is not running.
func (b Broker) NewTopic(t testing.TB, scopes int) brokers.Topic {
	t.Helper()
	brokers.Require(t, "rocketmq")
	scopes = max(scopes, 1)
	name := UniqueName(t, "t")
	adm, err := admin.NewAdmin(admin.WithResolver(primitive.NewPassthroughResolver([]string{b.NameServer})))
	if err != nil {
		t.Fatalf("rocketmqtest: admin client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	if err := adm.CreateTopic(ctx, admin.WithTopicCreate(name), admin.WithBrokerAddrCreate(b.Addr),
		admin.WithReadQueueNums(scopes), admin.WithWriteQueueNums(scopes)); err != nil {
		_ = adm.Close()
		t.Fatalf("rocketmqtest: creating topic %s: %v", name, err)
	}
	tp := &Topic{broker: b, name: name, groups: map[string]bool{}}
	t.Cleanup(func() { tp.cleanup(t, adm) })
	for {
		qs, err := adm.FetchPublishMessageQueues(ctx, name)
		if err == nil && len(qs) == scopes {
			tp.queues = qs
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("rocketmqtest: topic %s not routed by the name server (last: %d queues, %v)", name, len(qs), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return tp
}

// Topic is one topic on the test broker.
type Topic struct {
	broker Broker
	name   string

	queues []*primitive.MessageQueue // the topic's write queues (ProduceN)

	mu     sync.Mutex
	prod   producerClient
	groups map[string]bool
}

type producerClient interface {
	SendSync(ctx context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error)
	Shutdown() error
}

var _ brokers.Topic = (*Topic)(nil)

// Name is the topic name.
func (tp *Topic) Name() string { return tp.name }

// SourceYAML is the trigger's source in flow style.
func (tp *Topic) SourceYAML(group string) string {
	tp.use(group)
	return fmt.Sprintf(`{ rocketmq: { nameservers: [%q], topic: %s, group: %s } }`, tp.broker.NameServer, tp.name, group)
}

// DestinationYAML is this topic as a Ferry destination in flow style, on
// the name server the SourceYAML uses, e.g.
// { rocketmq: { nameservers: ["127.0.0.1:9876"], topic: ferry-t-1a2b } }.
func (tp *Topic) DestinationYAML() string {
	return fmt.Sprintf(`{ rocketmq: { nameservers: [%q], topic: %s } }`, tp.broker.NameServer, tp.name)
}

// NameServer is the name server address of the topic's broker.
func (tp *Topic) NameServer() string { return tp.broker.NameServer }

// Use records that group consumes this topic, so that the cleanup deletes
// the group's %RETRY% topic too. SourceYAML calls it; so must a test that
// builds a consumer for the topic itself.
func (tp *Topic) Use(group string) { tp.use(group) }

// Produce sends msgs in order with SendSync, each Key as the message key
// and sharding key: a hash of the key picks the queue, so equal keys share
// a queue.
func (tp *Topic) Produce(t testing.TB, msgs []brokers.Msg) {
	t.Helper()
	p, err := tp.producer()
	if err != nil {
		t.Fatalf("rocketmqtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	for i, m := range msgs {
		msg := primitive.NewMessage(tp.name, m.Payload)
		for k, v := range m.Headers {
			msg.WithProperty(k, v)
		}
		if m.Key != "" {
			msg.WithKeys([]string{m.Key})
			msg.WithShardingKey(m.Key)
		}
		res, err := p.SendSync(ctx, msg)
		if err == nil && res.Status != primitive.SendOK {
			err = fmt.Errorf("send status %d", res.Status)
		}
		if err != nil {
			t.Fatalf("rocketmqtest: producing message %d of %d to %s: %v", i+1, len(msgs), tp.name, err)
		}
	}
}

func (tp *Topic) producer() (producerClient, error) {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	if tp.prod != nil {
		return tp.prod, nil
	}
	p, err := producer.NewDefaultProducer(
		producer.WithNameServer([]string{tp.broker.NameServer}),
		producer.WithGroupName(tp.name+"-producer"),
		producer.WithInstanceName(tp.name+"-producer"),
		producer.WithQueueSelector(producer.NewHashQueueSelector()),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(10*time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("creating the producer: %w", err)
	}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("starting the producer: %w", err)
	}
	tp.prod = p
	return p, nil
}

// Backlog is how many messages the group has not committed, read from the
// broker (rocketmq.Backlog: committed vs max offsets of every queue).
func (tp *Topic) Backlog(t testing.TB, group string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if tp.broker.CountBacklog == nil {
		t.Fatalf("rocketmqtest: Backlog of %s needs Broker.CountBacklog", tp.name)
	}
	n, err := tp.broker.CountBacklog(ctx, []string{tp.broker.NameServer}, tp.name, group)
	if err != nil {
		t.Fatalf("rocketmqtest: %v", err)
	}
	return n
}

func (tp *Topic) use(group string) {
	tp.mu.Lock()
	tp.groups[group] = true
	tp.mu.Unlock()
}

// cleanup shuts the producer down and deletes the topic and the groups'
// retry topics (best effort: a failure is only logged).
func (tp *Topic) cleanup(t testing.TB, adm admin.Admin) {
	defer adm.Close()
	tp.mu.Lock()
	if tp.prod != nil {
		_ = tp.prod.Shutdown()
	}
	topics := []string{tp.name}
	for g := range tp.groups {
		topics = append(topics, "%RETRY%"+g)
	}
	tp.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, name := range topics {
		err := adm.DeleteTopic(ctx, admin.WithTopicDelete(name), admin.WithBrokerAddrDelete(tp.broker.Addr),
			admin.WithNameSrvAddr([]string{tp.broker.NameServer}))
		if err != nil && name == tp.name {
			t.Logf("rocketmqtest: deleting topic %s: %v", name, err)
		}
	}
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// UniqueName is a topic or group name for t: its sanitised name, prefix
// and a random suffix, within RocketMQ's 127 characters.
func UniqueName(t testing.TB, prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	base := strings.Trim(unsafeChars.ReplaceAllString(t.Name(), "_"), "_")
	if len(base) > 80 {
		base = base[len(base)-80:]
	}
	return fmt.Sprintf("ferry-%s-%s-%s", base, prefix, hex.EncodeToString(b))
}
