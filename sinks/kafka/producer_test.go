package kafka_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/sinks/kafka"
	"github.com/ferrydev/ferry/sinks/sinktest"
)

var _ sinks.Sink = (*kafka.Sink)(nil)

func TestNewProducerValidation(t *testing.T) {
	tests := []struct {
		name    string
		brokers []string
		wantErr []string // substrings; none = valid
	}{
		{"Valid", []string{"127.0.0.1:9092", "kafka-1.internal:19092"}, nil},
		{"NoBrokers", nil, []string{"brokers: at least one broker is required"}},
		{"EmptyAddress", []string{"127.0.0.1:9092", " "}, []string{"brokers[1]: empty address"}},
		{"NoPort", []string{"localhost"}, []string{`brokers[0]: "localhost" is not host:port`}},
		{"URL", []string{"kafka://localhost:9092"}, []string{`brokers[0]: "kafka://localhost:9092" is not host:port`}},
		{"BadPort", []string{"localhost:http"}, []string{`brokers[0]: "localhost:http" is not host:port`}},
		{"EveryProblem", []string{"", "x"}, []string{"brokers[0]: empty address", `brokers[1]: "x" is not host:port`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: tt.brokers})
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("NewProducer: %v", err)
				}
				if err := p.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				return
			}
			if err == nil {
				p.Close()
				t.Fatalf("NewProducer(%q) succeeded, want an error", tt.brokers)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "kafka sink config: ") {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// TestDeliverRefuses: deliveries that cannot work fail at once, without a
// broker, and say why.
func TestDeliverRefuses(t *testing.T) {
	p := newProducer(t, sinktest.Unreachable(t))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	bg := context.Background()
	sinktest.CheckRefusals(t, []sinktest.Refusal{
		{Name: "NilOutcome", Sink: p.Sink("t"), Ctx: bg, WantErr: "nil outcome"},
		{Name: "EmptyTopic", Sink: p.Sink(""), Ctx: bg, O: sinktest.Succeeded("a"), WantErr: `topic "": empty topic name`},
		{Name: "InvalidTopic", Sink: p.Sink("a/b"), Ctx: bg, O: sinktest.Succeeded("a"), WantErr: `topic "a/b": character '/' not allowed`},
		{Name: "CancelledContext", Sink: p.Sink("t"), Ctx: cancelled, O: sinktest.Succeeded("a"), WantErr: `deliver a to topic "t"`, WantIs: context.Canceled},
	})
}

func TestDeliverAfterClose(t *testing.T) {
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{sinktest.Unreachable(t)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := p.Sink("t").Deliver(context.Background(), sinktest.Succeeded("a")); !errors.Is(err, kafka.ErrClosed) {
		t.Errorf("Deliver after Close = %v, want ErrClosed", err)
	}
}
