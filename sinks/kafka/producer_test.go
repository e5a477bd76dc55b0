package kafka_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/sinks"
	"github.com/ferrydev/ferry/sinks/kafka"
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

// unreachable returns the address of a port nothing listens on.
func unreachable(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestDeliverRefuses: deliveries that cannot work fail at once, without a
// broker, and say why.
func TestDeliverRefuses(t *testing.T) {
	p := newProducer(t, unreachable(t))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		topic   string
		ctx     context.Context
		o       *sinks.Outcome
		wantErr string
		wantIs  error
	}{
		{"NilOutcome", "t", context.Background(), nil, "nil outcome", nil},
		{"EmptyTopic", "", context.Background(), outcome("a"), `topic "": empty topic name`, nil},
		{"InvalidTopic", "a/b", context.Background(), outcome("a"), `topic "a/b": character '/' not allowed`, nil},
		{"CancelledContext", "t", cancelled, outcome("a"), `deliver a to topic "t"`, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.Sink(tt.topic).Deliver(tt.ctx, tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Deliver = %v, want an error containing %q", err, tt.wantErr)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Deliver = %v, want errors.Is %v", err, tt.wantIs)
			}
		})
	}
}

// blackHole returns the address of a server that accepts connections and
// never answers, as a hung broker; it is closed in t.Cleanup.
func blackHole(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

// TestDeliverNoAnswer: when no broker answers (connections refused, or
// accepted by a hung server), Deliver fails within its deadline, naming
// the topic and the brokers, and Close does not hang.
func TestDeliverNoAnswer(t *testing.T) {
	tests := []struct {
		name string
		addr string
	}{
		{"Refused", unreachable(t)},
		{"Hung", blackHole(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const deadline = 300 * time.Millisecond
			s := newProducer(t, tt.addr).Sink("orders")
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			err := s.Deliver(ctx, outcome("x"))
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("Deliver succeeded")
			}
			if !strings.Contains(err.Error(), `topic "orders" at [`+tt.addr+`]`) {
				t.Errorf("error %q does not name the topic and the broker %s", err, tt.addr)
			}
			if elapsed > deadline+time.Second {
				t.Errorf("Deliver took %v, deadline %v", elapsed, deadline)
			}
			t.Logf("Deliver failed after %v: %v", elapsed.Round(time.Millisecond), err)
		})
	}
}

func TestDeliverAfterClose(t *testing.T) {
	p, err := kafka.NewProducer(kafka.ProducerConfig{Brokers: []string{unreachable(t)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := p.Sink("t").Deliver(context.Background(), outcome("a")); !errors.Is(err, kafka.ErrClosed) {
		t.Errorf("Deliver after Close = %v, want ErrClosed", err)
	}
}
