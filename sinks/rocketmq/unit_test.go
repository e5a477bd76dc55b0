package rocketmq

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/ferrydev/ferry/wire"
)

func TestProducerConfigValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  ProducerConfig
		want string // "" means valid
	}{
		{"Valid", ProducerConfig{NameServers: []string{"127.0.0.1:9876"}}, ""},
		{"ValidGroup", ProducerConfig{NameServers: []string{"127.0.0.1:9876", "[::1]:9876"}, Group: "g_1-x"}, ""},
		{"NoNameServers", ProducerConfig{}, "nameservers: at least one"},
		{"NoPort", ProducerConfig{NameServers: []string{"127.0.0.1"}}, `nameservers[0]: "127.0.0.1" is not IP:port`},
		{"HostName", ProducerConfig{NameServers: []string{"127.0.0.1:9876", "localhost:9876"}}, "nameservers[1]: \"localhost:9876\": the RocketMQ client takes an IP address"},
		{"BadGroup", ProducerConfig{NameServers: []string{"127.0.0.1:9876"}, Group: "a b"}, `group: "a b" must be`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("validate: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// NewProducer refuses before creating any client.
	if _, err := NewProducer(ProducerConfig{}); err == nil || !strings.Contains(err.Error(), "invalid producer config") {
		t.Fatalf("NewProducer with no name server: %v", err)
	}
}

func TestSinkValidation(t *testing.T) {
	t.Parallel()
	p := newProducer(&fakeSender{}, "g", discard())
	for _, tc := range []struct {
		name, topic, tag, want string
	}{
		{"NoTopic", "", "", "topic is required"},
		{"BadTopic", "a/b", "", `topic "a/b" must be`},
		{"LongTopic", strings.Repeat("t", 128), "", "must be 1-127"},
		{"BadTag", "t", "x\x01y", "contains a control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := p.Sink(tc.topic, tc.tag).Deliver(context.Background(), &wire.Outcome{ID: "x"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Deliver: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestMessage(t *testing.T) {
	t.Parallel()
	o := &wire.Outcome{
		Type: wire.TypeSucceeded, ID: "task-1", Tenant: "demo", Function: "echo", Status: "succeeded",
		Attempts: 1, Output: json.RawMessage(`{"ok":true}`), Hops: 4, Time: time.Unix(1700000000, 0).UTC(),
		TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	for _, tc := range []struct {
		name, tag string
		mutate    func(*wire.Outcome)
		wantErr   string
	}{
		{"Tagged", "done", nil, ""},
		{"Untagged", "", func(o *wire.Outcome) { o.TraceParent = "" }, ""},
		{"ControlCharInID", "", func(o *wire.Outcome) { o.ID = "a\x02b" }, "property ferry-id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := *o
			if tc.mutate != nil {
				tc.mutate(&o)
			}
			msg, err := message("orders", tc.tag, &o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("message: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(&o)
			if msg.Topic != "orders" || string(msg.Body) != string(body) {
				t.Errorf("topic %q body %s, want orders %s", msg.Topic, msg.Body, body)
			}
			want := map[string]string{
				"ferry-hops": "4", "ferry-id": o.ID, "ferry-type": o.Type,
				"traceparent": o.TraceParent, primitive.PropertyKeys: o.ID, primitive.PropertyTags: tc.tag,
			}
			for k, v := range want {
				if got := msg.GetProperty(k); got != v {
					t.Errorf("property %s = %q, want %q", k, got, v)
				}
			}
			if n := len(msg.GetProperties()); n != countNonEmpty(want) {
				t.Errorf("properties %v: %d, want %d", msg.GetProperties(), n, countNonEmpty(want))
			}
		})
	}
}

func countNonEmpty(m map[string]string) int {
	n := 0
	for _, v := range m {
		if v != "" {
			n++
		}
	}
	return n
}

// fakeSender plays the client: block makes SendSync wait until released
// (ignoring ctx, as the client's name server lookups do).
type fakeSender struct {
	mu       sync.Mutex
	sent     []*primitive.Message
	status   primitive.SendStatus
	err      error
	block    chan struct{}
	shutdown int
}

func (f *fakeSender) SendSync(_ context.Context, msgs ...*primitive.Message) (*primitive.SendResult, error) {
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	f.sent = append(f.sent, msgs...)
	return &primitive.SendResult{Status: f.status, MsgID: "m1"}, nil
}

func (f *fakeSender) Shutdown() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shutdown++
	return nil
}

func TestDeliverResults(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		status primitive.SendStatus
		err    error
		check  func(error) bool
	}{
		{"SendOK", primitive.SendOK, nil, func(err error) bool { return err == nil }},
		{"FlushDiskTimeout", primitive.SendFlushDiskTimeout, nil, func(err error) bool {
			var se *StatusError
			return errors.As(err, &se) && se.Status == "FLUSH_DISK_TIMEOUT"
		}},
		{"SlaveNotAvailable", primitive.SendSlaveNotAvailable, nil, func(err error) bool {
			var se *StatusError
			return errors.As(err, &se) && se.Status == "SLAVE_NOT_AVAILABLE"
		}},
		{"ClientError", primitive.SendOK, boom, func(err error) bool { return errors.Is(err, boom) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeSender{status: tc.status, err: tc.err}
			p := newProducer(f, "g", discard())
			err := p.Sink("t", "").Deliver(context.Background(), &wire.Outcome{ID: "x", Hops: 1})
			if !tc.check(err) {
				t.Fatalf("Deliver: %v", err)
			}
			if err := p.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}

// Deliver returns at its deadline while the client is stuck; Close waits
// for the stuck send once it is released; Deliver after Close fails.
func TestDeliverDeadlineAndClose(t *testing.T) {
	t.Parallel()
	f := &fakeSender{block: make(chan struct{})}
	p := newProducer(f, "g", discard())
	s := p.Sink("t", "")

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Deliver(ctx, &wire.Outcome{ID: "x"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Deliver: %v, want the deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Deliver took %v with a 50ms deadline", d)
	}
	// An expired context sends nothing.
	if err := s.Deliver(ctx, &wire.Outcome{ID: "y"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Deliver with an expired context: %v", err)
	}

	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	for !isClosed(p) { // Close has begun and waits for the stuck send
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-closed:
		t.Fatalf("Close returned while a send was in flight: %v", err)
	default:
	}
	if err := s.Deliver(context.Background(), &wire.Outcome{ID: "z"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Deliver during Close: %v, want ErrClosed", err)
	}
	close(f.block) // the stuck send finishes; Close proceeds
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Deliver(context.Background(), &wire.Outcome{ID: "w"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Deliver after Close: %v, want ErrClosed", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.shutdown != 1 {
		t.Fatalf("client shut down %d times, want 1", f.shutdown)
	}
	for _, m := range f.sent {
		if k := m.GetKeys(); k == "y" || k == "z" || k == "w" {
			t.Fatalf("message %s was sent", m.GetKeys())
		}
	}
}

func isClosed(p *Producer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

func TestCloseIdempotent(t *testing.T) {
	t.Parallel()
	f := &fakeSender{}
	p := newProducer(f, "g", discard())
	for range 2 {
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if f.shutdown != 1 {
		t.Fatalf("client shut down %d times, want 1", f.shutdown)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
