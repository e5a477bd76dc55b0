package kafka

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/wire"
)

// TestSinkChecksTopicAtBuild: Producer.Sink checks the topic once, when the
// Sink is made (as the other sinks check theirs at build); Deliver returns
// that error without checking again and without sending. No broker is
// needed: nothing connects.
func TestSinkChecksTopicAtBuild(t *testing.T) {
	p, err := NewProducer(ProducerConfig{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })

	bad := p.Sink("a/b")
	if bad.err == nil || !strings.Contains(bad.err.Error(), `topic "a/b": character '/' not allowed`) {
		t.Fatalf("Sink(\"a/b\") built without the topic error: %v", bad.err)
	}
	err = bad.Deliver(context.Background(), &wire.Outcome{ID: "x"})
	if !errors.Is(err, bad.err) {
		t.Errorf("Deliver = %v, want the error found at build", err)
	}
	if good := p.Sink("orders"); good.err != nil {
		t.Errorf("Sink(\"orders\") = %v, want no error", good.err)
	}
}
