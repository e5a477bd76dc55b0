package kafka_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/kafka"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/test/brokers/kafkatest"
)

// setup creates a fresh topic with parts partitions and a unique group name.
func setup(t *testing.T, parts int) (*kafkatest.Topic, string) {
	t.Helper()
	tp := kafkatest.New().CreateTopic(t, parts)
	return tp, kafkatest.UniqueName(t)
}

// waitBacklog polls the broker until the group's backlog is want; a failure
// reports the group's committed offsets too.
func waitBacklog(t testing.TB, tp *kafkatest.Topic, group string, want int64, d time.Duration) {
	t.Helper()
	if got, ok := pollertest.PollBacklog(t, tp, group, func(n int64) bool { return n == want }, d); !ok {
		t.Fatalf("backlog = %d, want %d (committed %v)", got, want, tp.Committed(t, group))
	}
}

var _ poller.Source = (*kafka.Source)(nil)

// partOf and offsetOf parse "kafka:<topic>/<partition>/<offset>".
func partOf(t testing.TB, m *poller.Message) int {
	t.Helper()
	return int(idField(t, m, 1))
}

func offsetOf(t testing.TB, m *poller.Message) int64 {
	t.Helper()
	return idField(t, m, 2)
}

func idField(t testing.TB, m *poller.Message, i int) int64 {
	t.Helper()
	f := strings.Split(m.ID, "/")
	if len(f) != 3 {
		t.Fatalf("bad id %q", m.ID)
	}
	n, err := strconv.ParseInt(f[i], 10, 64)
	if err != nil {
		t.Fatalf("bad id %q: %v", m.ID, err)
	}
	return n
}
