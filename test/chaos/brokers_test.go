package chaos

import (
	"fmt"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/kafkatest"
	"github.com/ferrydev/ferry/test/brokers/redisstreamtest"
	"github.com/ferrydev/ferry/test/brokers/rocketmqtest"
	"github.com/ferrydev/ferry/test/ferrytest"
)

// brokerTarget is what a broker row runs against: a name for the table,
// the broker to break, and a fresh topic filled with seqs [0, n).
type brokerTarget struct {
	label, broker string
	// fill creates the topic, produces n messages (accepted in l) and
	// returns the trigger's source YAML.
	fill func(t *testing.T, n int, l *Ledger) string
}

func topicFill(b brokers.Broker) func(t *testing.T, n int, l *Ledger) string {
	return func(t *testing.T, n int, l *Ledger) string {
		tp := b.NewTopic(t, 4)
		msgs := make([]brokers.Msg, n)
		for i := range msgs {
			msgs[i] = brokers.Msg{Key: fmt.Sprintf("k%d", i%16), Payload: payload(i)}
		}
		tp.Produce(t, msgs)
		for i := range n {
			l.Accept(i)
		}
		return tp.SourceYAML(fmt.Sprintf("chaos-%d", time.Now().UnixNano()))
	}
}

func rabbitFill(typ string) func(t *testing.T, n int, l *Ledger) string {
	return func(t *testing.T, n int, l *Ledger) string {
		q := newRabbitQueue(t, typ)
		q.produce(t, n, l)
		return q.sourceYAML()
	}
}

func brokerTargets() []brokerTarget {
	return []brokerTarget{
		{"kafka", brokers.Kafka, topicFill(kafkatest.New())},
		{"rocketmq", brokers.RocketMQ, topicFill(rocketmqtest.New())},
		{"rabbitmq (classic)", brokers.RabbitMQ, rabbitFill("classic")},
		{"rabbitmq (quorum)", brokers.RabbitMQ, rabbitFill("quorum")},
		{"redis streams", brokers.Redis, topicFill(redisstreamtest.New())},
	}
}

// rowBroker runs a Ferry trigger (concurrency 4, batch 1, a 2 ms
// function) over n messages and, a third of the way in, kills the broker
// with kill -9 (hard) or stops it with down.sh (graceful), then starts it
// again with up.sh and counts once everything settled.
func rowBroker(t *testing.T, tab *Table, target brokerTarget, hard bool, n int) {
	fault := "broker restart"
	if hard {
		fault = "broker kill -9"
	}
	row := Row{Fault: fault, Target: target.label}
	defer func() { tab.Add(row) }()
	brokers.Require(t, target.broker)
	l := NewLedger()
	be := NewBackend(l, func(int, int) (int, time.Duration, int) { return 0, 2 * time.Millisecond, 0 })
	defer be.Close()
	p, ok := startTrigger(t, &row, l, be, target.fill(t, n, l), n)
	if !ok {
		return
	}
	at, _ := l.Delivered()
	faultAt := time.Now()
	if hard {
		kill9Broker(t, target.broker)
	} else {
		brokers.Stop(t, target.broker)
	}
	brokers.Start(t, target.broker)
	up := time.Now()
	row.Recovery = recovery(l, faultAt, up, 2*time.Minute)
	settled := settle(l, 3*time.Second, 3*time.Minute)
	p.Term()
	row.Count = l.Count()
	row.Status = verdict(row.Count, -1, settled)
	row.Note = fmt.Sprintf("fault at %d of %d delivered", at, n)
	if row.Status != "ok" {
		t.Error(row.Status)
	}
}

// startTrigger starts ferry with a trigger (concurrency 4, batch 1) on
// source, invoking be, and waits until a third of the n messages were
// delivered. false: they were not within 2 minutes (row says so).
func startTrigger(t *testing.T, row *Row, l *Ledger, be *Backend, source string, n int) (*ferrytest.Proc, bool) {
	p := ferrytest.Start(t, serveConfig(be.URL(), "", fmt.Sprintf(`triggers:
  - { name: trig, function: f, source: %s, concurrency: 4, batch: { size: 1 } }
`, source)))
	if !waitUntil(2*time.Minute, func() bool { d, _ := l.Delivered(); return d >= n/3 }) {
		row.Status = "FAIL: the trigger did not reach a third of the messages"
		t.Error(row.Status)
		return p, false
	}
	return p, true
}

// rowRawRabbit is rowBroker's kill -9 with amqp091-go's own consumer in
// place of Ferry: what the broker itself redelivers.
func rowRawRabbit(t *testing.T, tab *Table, typ string, n int) {
	row := Row{Fault: "broker kill -9, raw amqp091-go consumer (no Ferry)", Target: "rabbitmq (" + typ + ")"}
	defer func() { tab.Add(row) }()
	brokers.Require(t, brokers.RabbitMQ)
	l := NewLedger()
	q := newRabbitQueue(t, typ)
	q.produce(t, n, l)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); q.rawConsume(l, stop) }()
	defer func() { close(stop); <-done }()
	if !waitUntil(2*time.Minute, func() bool { d, _ := l.Delivered(); return d >= n/3 }) {
		row.Status = "FAIL: the consumer did not reach a third of the messages"
		t.Error(row.Status)
		return
	}
	at, _ := l.Delivered()
	faultAt := time.Now()
	kill9Broker(t, brokers.RabbitMQ)
	brokers.Start(t, brokers.RabbitMQ)
	up := time.Now()
	row.Recovery = recovery(l, faultAt, up, 2*time.Minute)
	settled := settle(l, 3*time.Second, 3*time.Minute)
	row.Count = l.Count()
	row.Status = verdict(row.Count, -1, settled)
	row.Note = fmt.Sprintf("fault at %d of %d delivered", at, n)
	if row.Status != "ok" {
		q.mu.Lock()
		t.Errorf("%s; consumer errors: %q", row.Status, q.errs)
		q.mu.Unlock()
	}
}
