package conformance_test

import (
	"os"
	"testing"

	"github.com/ferrydev/ferry/poller/kafka/kafkatest"
	"github.com/ferrydev/ferry/poller/rabbitmq/rabbitmqtest"
	"github.com/ferrydev/ferry/poller/redisstream/redisstreamtest"
	"github.com/ferrydev/ferry/poller/rocketmq/rocketmqtest"
	"github.com/ferrydev/ferry/test/conformance"
	"github.com/ferrydev/ferry/test/ferrytest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ferrytest.Cleanup()
	os.Exit(code)
}

func TestKafka(t *testing.T) {
	conformance.Run(t, kafkatest.New(), conformance.Features{SharedGroup: true})
}

func TestRabbitMQ(t *testing.T) {
	conformance.Run(t, rabbitmqtest.New(), conformance.Features{SharedGroup: true})
}

func TestRedisStreams(t *testing.T) {
	conformance.Run(t, redisstreamtest.New(), conformance.Features{SharedGroup: true})
}

func TestRocketMQ(t *testing.T) {
	conformance.Run(t, rocketmqtest.New(), conformance.Features{SharedGroup: true})
}
