package rocketmq

import (
	"context"
	"fmt"
	"sync"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"

	brokerrmq "github.com/ferrydev/ferry/internal/brokers/rocketmq"
	"github.com/ferrydev/ferry/poller"
)

var (
	_ poller.Source = (*Source)(nil)
	_ poller.Lagger = (*Source)(nil)
)

// Source reads one RocketMQ topic as a member of a consumer group. It is
// safe for concurrent use; Read is meant to be called by one goroutine.
//
// The client reconnects to the name server and broker by itself, so Read
// does not report connection loss: it keeps waiting, and messages flow
// again once the broker is back. Nothing is committed past a message that
// is not settled, whatever happens to the connection.
type Source struct {
	cfg Config
	uri string

	mu   sync.Mutex
	sess *session
}

// New validates cfg and returns an unconnected Source.
func New(cfg Config) (*Source, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.NameServers = append([]string(nil), cfg.NameServers...)
	brokerrmq.SetClientLogger(cfg.Logger)
	return &Source{
		cfg: cfg,
		uri: fmt.Sprintf("rocketmq://%s/%s", cfg.NameServers[0], cfg.Topic),
	}, nil
}

// pushConsumer is the part of the client's push consumer the Source uses.
type pushConsumer interface {
	Start() error
	Shutdown() error
	Subscribe(topic string, selector consumer.MessageSelector,
		f func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error)) error
}

// Connect creates the push consumer, subscribes and starts it (joining the
// group; queues are assigned by the group's rebalance within seconds). It
// does nothing when already connected.
func (s *Source) Connect(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sess != nil {
		return nil
	}
	from := consumer.ConsumeFromFirstOffset
	if s.cfg.Start == StartLatest {
		from = consumer.ConsumeFromLastOffset
	}
	fl := s.cfg.flow()
	pc, err := consumer.NewPushConsumer(
		consumer.WithNameServer(s.cfg.NameServers),
		consumer.WithGroupName(s.cfg.Group),
		// A client id of its own: two Sources of one group in a process
		// must not share the client (nor its rebalance identity).
		consumer.WithInstance(brokerrmq.InstanceName("ferry")),
		consumer.WithConsumerModel(consumer.Clustering),
		consumer.WithConsumeFromWhere(from),
		consumer.WithConsumerOrder(s.cfg.Orderly),
		consumer.WithConsumeMessageBatchMaxSize(fl.consumeBatch),
		consumer.WithPullBatchSize(pullBatch),
		consumer.WithPullThresholdForQueue(fl.queueCache),
		consumer.WithPullThresholdSizeForQueue(pullThresholdSizeMiB),
		consumer.WithConsumeConcurrentlyMaxSpan(fl.maxSpan),
		consumer.WithConsumeGoroutineNums(fl.goroutines),
		consumer.WithConsumeTimeout(consumeTimeout),
		consumer.WithSuspendCurrentQueueTimeMillis(suspendOrderly),
	)
	if err != nil {
		return fmt.Errorf("rocketmq: creating the consumer for %s: %w", s.uri, err)
	}
	sess := newSession(s.uri, s.cfg.Logger, s.cfg.Orderly)
	sess.shutdown = pc.Shutdown
	sess.progress = func() map[primitive.MessageQueue]mqProgress {
		info := pc.GetConsumerRunningInfo(false)
		out := make(map[primitive.MessageQueue]mqProgress, len(info.MQTable))
		for mq, pq := range info.MQTable {
			out[mq] = mqProgress{commit: pq.CommitOffset, dropped: pq.Dropped}
		}
		return out
	}
	if err := start(ctx, pc, s.cfg.Topic, s.cfg.Tags, sess.consume); err != nil {
		return fmt.Errorf("rocketmq: connecting to %s as group %s: %w", s.uri, s.cfg.Group, err)
	}
	s.sess = sess
	s.cfg.Logger.Debug("rocketmq consumer started", "source", s.uri, "group", s.cfg.Group, "orderly", s.cfg.Orderly,
		"callback_batch", fl.consumeBatch, "callbacks", fl.goroutines, "queue_cache", fl.queueCache)
	return nil
}

// start subscribes and starts pc, giving up (and shutting pc down in the
// background) when ctx ends first: Start itself takes no context.
func start(ctx context.Context, pc pushConsumer, topic, tags string,
	f func(context.Context, ...*primitive.MessageExt) (consumer.ConsumeResult, error)) error {
	sel := consumer.MessageSelector{Type: consumer.TAG, Expression: tags}
	if err := pc.Subscribe(topic, sel, f); err != nil {
		return fmt.Errorf("subscribing: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- pc.Start() }()
	select {
	case err := <-done:
		if err != nil {
			_ = pc.Shutdown() // Start shuts down only on some of its errors
			return fmt.Errorf("starting: %w", err)
		}
		return nil
	case <-ctx.Done():
		go func() {
			<-done
			_ = pc.Shutdown()
		}()
		return fmt.Errorf("starting: %w", ctx.Err())
	}
}

func (s *Source) session() *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sess
}

// Read blocks until messages are available or ctx ends, and returns up to
// max(InFlight, 256) of them, each queue's messages in offset order. It
// returns an error wrapping poller.ErrNotConnected before Connect and after
// Close.
func (s *Source) Read(ctx context.Context) ([]*poller.Message, error) {
	sess := s.session()
	if sess == nil {
		return nil, fmt.Errorf("rocketmq: %s: %w", s.uri, poller.ErrNotConnected)
	}
	maxRead := s.cfg.flow().maxRead
	for {
		if msgs := sess.in.take(maxRead); len(msgs) > 0 {
			return msgs, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-sess.stopping:
			return nil, fmt.Errorf("rocketmq: %s: source closed: %w", s.uri, poller.ErrNotConnected)
		case <-sess.in.notify:
		}
	}
}

// Close stops delivering, waits (bounded by ctx, at most 5 s) until the
// client has recorded the offsets of the settled messages, shuts the
// consumer down, which flushes those offsets to the broker, and then
// releases the callbacks still waiting for acks: their messages are
// redelivered later, from the committed offset. Close is idempotent and
// safe before Connect; Connect may be called again afterwards.
func (s *Source) Close(ctx context.Context) error {
	s.mu.Lock()
	sess := s.sess
	s.sess = nil
	s.mu.Unlock()
	if sess == nil {
		return nil
	}
	return sess.stop(ctx)
}

// Lag is how many messages of the topic the group has not committed yet,
// read from the broker (committed offsets reach it every few seconds, so
// the figure trails the acks a little).
func (s *Source) Lag(ctx context.Context) (int64, error) {
	return Backlog(ctx, s.cfg.NameServers, s.cfg.Topic, s.cfg.Group)
}

// PartitionLag is the group's backlog per message queue ("broker/queueId").
func (s *Source) PartitionLag(ctx context.Context) (map[string]int64, error) {
	return QueueBacklog(ctx, s.cfg.NameServers, s.cfg.Topic, s.cfg.Group)
}
