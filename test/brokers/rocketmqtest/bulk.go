package rocketmqtest

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"

	"github.com/ferrydev/ferry/test/brokers"
)

var _ brokers.BulkTopic = (*Topic)(nil)

// bulkBatch is how many messages one batch send of ProduceN carries (a
// few KiB of small messages: far below the broker's 4 MiB limit).
const bulkBatch = 256

// ProduceN sends n messages, msg(i) for i in [0, n), as Produce does (Key
// as message key and sharding key, headers as properties, equal keys in
// one queue) but as batch sends of up to 256 messages, one sender per
// queue: Produce's one SendSync per message would take minutes for
// 200,000 messages. The queue of a key is the FNV-1a hash of the key
// modulo the number of queues, as the hash selector computes it; keyless
// messages go round robin. Each queue receives its messages in order.
func (tp *Topic) ProduceN(t testing.TB, n int, msg func(i int) brokers.Msg) {
	t.Helper()
	if len(tp.queues) == 0 {
		t.Fatalf("rocketmqtest: topic %s: no write queues known", tp.name)
	}
	p, err := producer.NewDefaultProducer(
		producer.WithNameServer([]string{tp.broker.NameServer}),
		producer.WithGroupName(tp.name+"-bulk"),
		producer.WithInstanceName(tp.name+"-bulk"),
		producer.WithQueueSelector(producer.NewManualQueueSelector()),
		producer.WithRetry(2),
		producer.WithSendMsgTimeout(10*time.Second),
	)
	if err == nil {
		err = p.Start()
	}
	if err != nil {
		t.Fatalf("rocketmqtest: bulk producer: %v", err)
	}
	defer func() { _ = p.Shutdown() }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		sendErr error
	)
	fail := func(err error) {
		errOnce.Do(func() { sendErr = err; cancel() })
	}
	feeds := make([]chan []*primitive.Message, len(tp.queues))
	for q := range feeds {
		feeds[q] = make(chan []*primitive.Message, 4)
		wg.Go(func() {
			for batch := range feeds[q] {
				if ctx.Err() != nil {
					continue // drain after a failure
				}
				if err := sendBatch(ctx, p, batch); err != nil {
					fail(fmt.Errorf("queue %d: %w", tp.queues[q].QueueId, err))
				}
			}
		})
	}
	pending := make([][]*primitive.Message, len(tp.queues))
	for i := 0; i < n && ctx.Err() == nil; i++ {
		m := msg(i)
		q := i % len(tp.queues)
		if m.Key != "" {
			h := fnv.New32a()
			_, _ = h.Write([]byte(m.Key))
			q = int(h.Sum32() % uint32(len(tp.queues)))
		}
		pm := primitive.NewMessage(tp.name, m.Payload)
		for k, v := range m.Headers {
			pm.WithProperty(k, v)
		}
		if m.Key != "" {
			pm.WithKeys([]string{m.Key})
			pm.WithShardingKey(m.Key)
		}
		// The client sets the message id of single sends only.
		pm.WithProperty(primitive.PropertyUniqueClientMessageIdKeyIndex, primitive.CreateUniqID())
		pm.Queue = tp.queues[q]
		pending[q] = append(pending[q], pm)
		if len(pending[q]) == bulkBatch {
			feeds[q] <- pending[q]
			pending[q] = nil
		}
	}
	for q, batch := range pending {
		if len(batch) > 0 {
			feeds[q] <- batch
		}
		close(feeds[q])
	}
	wg.Wait()
	if sendErr != nil {
		t.Fatalf("rocketmqtest: produce %d messages to %s: %v", n, tp.name, sendErr)
	}
}

// sendBatch sends msgs (all for one queue) in one batch send.
func sendBatch(ctx context.Context, p producerClient, msgs []*primitive.Message) error {
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	res, err := p.SendSync(ctx, msgs...)
	switch {
	case err != nil:
		return err
	case res == nil:
		return errors.New("no send result")
	case res.Status != primitive.SendOK:
		return fmt.Errorf("send status %d", res.Status)
	}
	return nil
}
