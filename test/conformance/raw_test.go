package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/redis/go-redis/v9"
	kafkago "github.com/segmentio/kafka-go"

	"github.com/ferrydev/ferry/test/brokers/rocketmqtest"
	"github.com/ferrydev/ferry/test/conformance"
)

// rawConsumer is a broker's client library consuming a topic with no
// invocation, as a competent user would write it: the ceiling a trigger
// is measured against (BenchmarkPollers).
type rawConsumer struct {
	// library names the client library, e.g. "kafka-go".
	library string
	// consume reads tp as group from its oldest message, commits or acks
	// what it read in batches, and counts each message in got, until ctx
	// ends (then it returns nil) or the client fails.
	consume func(ctx context.Context, tb testing.TB, tp conformance.Topic, group string, got *atomic.Int64) error
}

// rawBatch is how many messages the raw consumers read or settle at a
// time (the XREADGROUP COUNT, the multiple-ack and commit batch).
const rawBatch = 100

// rawKafka is a kafka-go group Reader on the broker at addr, with the
// reader options of the Ferry adapter where they matter (1 MiB fetches,
// 500 ms MaxWait) and asynchronous commits every 100 ms (Ferry's default
// commit interval): FetchMessage, then CommitMessages per 100 messages,
// and at once for a message that reaches the partition's high-water mark
// (the consumer has caught up: nothing else would commit it).
func rawKafka(addr string) rawConsumer {
	return rawConsumer{library: "kafka-go", consume: func(ctx context.Context, _ testing.TB, tp conformance.Topic, group string, got *atomic.Int64) error {
		r := kafkago.NewReader(kafkago.ReaderConfig{
			Brokers:        []string{addr},
			GroupID:        group,
			Topic:          tp.Name(),
			MinBytes:       1,
			MaxBytes:       1 << 20,
			MaxWait:        500 * time.Millisecond,
			StartOffset:    kafkago.FirstOffset,
			CommitInterval: 100 * time.Millisecond,
		})
		defer r.Close()
		batch := make([]kafkago.Message, 0, rawBatch)
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("fetch: %w", err)
			}
			got.Add(1)
			batch = append(batch, m)
			if len(batch) == rawBatch || m.Offset+1 >= m.HighWaterMark {
				// Asynchronous: this only queues the offsets for the
				// reader's committer.
				if err := r.CommitMessages(ctx, batch...); err != nil && ctx.Err() == nil {
					return fmt.Errorf("commit: %w", err)
				}
				batch = batch[:0]
			}
		}
	}}
}

// rawRabbitMQ is an amqp091-go consumer on the node at url with manual
// acks: prefetch 200, one multiple-ack per 100 deliveries, and an ack of
// what is left whenever no delivery came for 50 ms.
func rawRabbitMQ(url string) rawConsumer {
	return rawConsumer{library: "amqp091-go", consume: func(ctx context.Context, _ testing.TB, tp conformance.Topic, _ string, got *atomic.Int64) error {
		conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(10 * time.Second)})
		if err != nil {
			return fmt.Errorf("dial: %w", err)
		}
		defer func() { _ = conn.CloseDeadline(time.Now().Add(5 * time.Second)) }()
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("channel: %w", err)
		}
		if err := ch.Qos(2*rawBatch, 0, false); err != nil {
			return fmt.Errorf("qos: %w", err)
		}
		deliveries, err := ch.ConsumeWithContext(ctx, tp.Name(), "", false, false, false, false, nil)
		if err != nil {
			return fmt.Errorf("consume: %w", err)
		}
		idle := time.NewTicker(50 * time.Millisecond)
		defer idle.Stop()
		var last uint64 // delivery tag of the newest unacked delivery
		pending := 0
		ack := func() error {
			if pending == 0 {
				return nil
			}
			pending = 0
			return ch.Ack(last, true)
		}
		for {
			select {
			case <-ctx.Done():
				return nil
			case d, ok := <-deliveries:
				if !ok {
					if ctx.Err() != nil {
						return nil
					}
					return errors.New("deliveries closed")
				}
				got.Add(1)
				last = d.DeliveryTag
				if pending++; pending == rawBatch {
					if err := ack(); err != nil {
						return fmt.Errorf("ack: %w", err)
					}
				}
			case <-idle.C:
				if err := ack(); err != nil {
					return fmt.Errorf("ack: %w", err)
				}
			}
		}
	}}
}

// rawRedis is a go-redis consumer of the Redis at url: XREADGROUP COUNT
// 100 (BLOCK 500 ms) in a loop, each read's entries acknowledged with one
// XACK. It creates the group at "0" (every entry).
func rawRedis(url string) rawConsumer {
	return rawConsumer{library: "go-redis", consume: func(ctx context.Context, _ testing.TB, tp conformance.Topic, group string, got *atomic.Int64) error {
		opt, err := redis.ParseURL(url)
		if err != nil {
			return err
		}
		rdb := redis.NewClient(opt)
		defer rdb.Close()
		if err := rdb.XGroupCreate(ctx, tp.Name(), group, "0").Err(); err != nil {
			return fmt.Errorf("XGROUP CREATE: %w", err)
		}
		args := &redis.XReadGroupArgs{Group: group, Consumer: "raw", Streams: []string{tp.Name(), ">"},
			Count: rawBatch, Block: 500 * time.Millisecond}
		ids := make([]string, 0, rawBatch)
		for {
			streams, err := rdb.XReadGroup(ctx, args).Result()
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, redis.Nil):
				continue
			case err != nil:
				return fmt.Errorf("XREADGROUP: %w", err)
			}
			ids = ids[:0]
			for _, s := range streams {
				for _, m := range s.Messages {
					ids = append(ids, m.ID)
				}
			}
			got.Add(int64(len(ids)))
			if err := rdb.XAck(ctx, tp.Name(), group, ids...).Err(); err != nil && ctx.Err() == nil {
				return fmt.Errorf("XACK: %w", err)
			}
		}
	}}
}

// The RocketMQ adapter's push-consumer settings (poller/rocketmq/config.go),
// which the raw consumer uses too.
const (
	rocketConsumeBatch      = 16
	rocketPullBatch         = 16
	rocketConsumeGoroutines = 16
	rocketPullThreshold     = 128
	rocketPullThresholdMiB  = 16
)

// rawRocketMQ is a rocketmq-client-go push consumer (clustering, from the
// first offset) whose callback counts the messages and returns
// ConsumeSuccess, with the consume and pull batch settings of the Ferry
// adapter. The client commits offsets itself: locally as callbacks
// return, to the broker every 5 s.
func rawRocketMQ() rawConsumer {
	return rawConsumer{library: "rocketmq-client-go", consume: func(ctx context.Context, _ testing.TB, tp conformance.Topic, group string, got *atomic.Int64) error {
		rtp := tp.(*rocketmqtest.Topic)
		rtp.Use(group) // the cleanup also deletes the group's %RETRY% topic
		pc, err := consumer.NewPushConsumer(
			consumer.WithNameServer([]string{rtp.NameServer()}),
			consumer.WithGroupName(group),
			consumer.WithInstance(fmt.Sprintf("raw-%d-%s", os.Getpid(), group)),
			consumer.WithConsumerModel(consumer.Clustering),
			consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
			consumer.WithConsumeMessageBatchMaxSize(rocketConsumeBatch),
			consumer.WithPullBatchSize(rocketPullBatch),
			consumer.WithPullThresholdForQueue(rocketPullThreshold),
			consumer.WithPullThresholdSizeForQueue(rocketPullThresholdMiB),
			consumer.WithConsumeGoroutineNums(rocketConsumeGoroutines),
		)
		if err != nil {
			return fmt.Errorf("new push consumer: %w", err)
		}
		err = pc.Subscribe(tp.Name(), consumer.MessageSelector{Type: consumer.TAG, Expression: "*"},
			func(_ context.Context, msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
				got.Add(int64(len(msgs)))
				return consumer.ConsumeSuccess, nil
			})
		if err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		if err := pc.Start(); err != nil {
			_ = pc.Shutdown()
			return fmt.Errorf("start: %w", err)
		}
		<-ctx.Done()
		return pc.Shutdown()
	}}
}
