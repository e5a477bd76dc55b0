package conformance_test

import (
	"github.com/ferrydev/ferry/poller/pollertest/sources"
	"os"
	"testing"

	"github.com/ferrydev/ferry/test/brokers/kafkatest"
	"github.com/ferrydev/ferry/test/brokers/rabbitmqtest"
	"github.com/ferrydev/ferry/test/brokers/redisstreamtest"
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
	conformance.Run(t, sources.RocketMQBroker(), conformance.Features{SharedGroup: true})
}
