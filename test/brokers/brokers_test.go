package brokers

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The brokers must be up (test/brokers/up.sh, which `make test` runs first).
func TestRequireAll(t *testing.T) {
	Require(t, All...)
}

func TestAddrDefaultsAndEnv(t *testing.T) {
	for _, v := range []string{"FERRY_KAFKA", "FERRY_ROCKETMQ", "FERRY_RABBITMQ", "FERRY_REDIS", "FERRY_ROCKETMQ_BROKER"} {
		t.Setenv(v, "")
	}
	want := map[string]string{
		Kafka:    "127.0.0.1:9092",
		RocketMQ: "127.0.0.1:9876",
		RabbitMQ: "amqp://guest:guest@127.0.0.1:5672/",
		Redis:    "redis://127.0.0.1:6379/0",
	}
	for n, w := range want {
		if got := Addr(n); got != w {
			t.Errorf("Addr(%q) = %q, want %q", n, got, w)
		}
	}
	t.Setenv("FERRY_REDIS", "redis://10.0.0.1:7000/2")
	if got := Addr(Redis); got != "redis://10.0.0.1:7000/2" {
		t.Errorf("Addr(redis) with FERRY_REDIS = %q", got)
	}
	got, err := dialAddrs(Redis)
	if err != nil || !reflect.DeepEqual(got, []string{"10.0.0.1:7000"}) {
		t.Errorf("dialAddrs(redis) = %v, %v", got, err)
	}
	t.Setenv("FERRY_RABBITMQ", "amqp://u:p@localhost/vhost")
	if got, err := dialAddrs(RabbitMQ); err != nil || !reflect.DeepEqual(got, []string{"localhost:5672"}) {
		t.Errorf("dialAddrs(rabbitmq) = %v, %v", got, err)
	}
	if got, err := dialAddrs(RocketMQ); err != nil || !reflect.DeepEqual(got, []string{"127.0.0.1:9876", "127.0.0.1:10911"}) {
		t.Errorf("dialAddrs(rocketmq) = %v, %v", got, err)
	}
}

func TestAddrUnknownPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Addr(\"nats\") did not panic")
		}
	}()
	Addr("nats")
}

// fakeTB records Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	failed bool
	msg    string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = true
	f.msg = format
	_ = args
}

func TestRequireFailsOnClosedPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	t.Setenv("FERRY_KAFKA", addr)
	f := &fakeTB{TB: t}
	Require(f, Kafka)
	if !f.failed || !strings.Contains(f.msg, "start them with") {
		t.Fatalf("Require on a closed port: failed=%v msg=%q", f.failed, f.msg)
	}
}

func TestScriptsFound(t *testing.T) {
	for _, s := range []string{"up.sh", "down.sh"} {
		p, err := scriptPath(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(p); err != nil || filepath.Base(p) != s {
			t.Fatalf("scriptPath(%q) = %q, %v", s, p, err)
		}
	}
}
