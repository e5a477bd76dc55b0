package rabbitmq

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/ferrydev/ferry/sinks/sinktest"
	"github.com/ferrydev/ferry/wire"
)

func TestNewPublisherValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url, want string
	}{
		{"Missing", "", "missing URL"},
		{"NotAMQP", "http://127.0.0.1:5672/", "not an AMQP URI"},
		{"BadPort", "amqp://guest:s3cret@127.0.0.1:port/", "not an AMQP URI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewPublisher(PublisherConfig{URL: tc.url})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewPublisher(%q): %v, want an error containing %q", tc.url, err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
	p, err := NewPublisher(PublisherConfig{URL: "amqps://u:p@example.com/vhost"})
	if err != nil {
		t.Fatalf("valid URL: %v", err)
	}
	if p.addr != "example.com:5671" {
		t.Fatalf("addr %q, want example.com:5671", p.addr)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("Close before any Deliver: %v", err)
	}
	err = p.Sink("", "q").Deliver(context.Background(), &wire.Outcome{ID: "x"})
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("Deliver after Close: %v, want ErrClosed", err)
	}
}

func TestPublishing(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		traceParent string
		wantTrace   bool
	}{
		{"WithTraceParent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true},
		{"WithoutTraceParent", "", false},
		{"UnsafeTraceParent", "00-x\r\nInjected: 1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := &wire.Outcome{
				Type: wire.TypeSucceeded, ID: "task-1", Tenant: "demo", Function: "echo",
				Status: "succeeded", Attempts: 1, Output: json.RawMessage(`{"ok":true}`),
				Hops: 3, Time: at, TraceParent: tc.traceParent,
			}
			p, err := publishing(o)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := json.Marshal(o)
			if string(p.Body) != string(body) {
				t.Errorf("body %s, want %s", p.Body, body)
			}
			want := map[string]any{"ferry-hops": "3", "ferry-id": "task-1", "ferry-type": wire.TypeSucceeded}
			if tc.wantTrace {
				want["traceparent"] = tc.traceParent
			}
			if len(p.Headers) != len(want) {
				t.Errorf("headers %v, want %v", p.Headers, want)
			}
			for k, v := range want {
				if p.Headers[k] != v {
					t.Errorf("header %s = %v, want %v", k, p.Headers[k], v)
				}
			}
			if err := p.Headers.Validate(); err != nil {
				t.Errorf("headers invalid for AMQP: %v", err)
			}
			if p.ContentType != "application/json" || p.DeliveryMode != amqp.Persistent ||
				p.MessageId != "task-1" || p.Type != wire.TypeSucceeded || !p.Timestamp.Equal(at) || p.AppId != AppID {
				t.Errorf("properties: content-type %q, delivery mode %d, message-id %q, type %q, timestamp %v, app-id %q",
					p.ContentType, p.DeliveryMode, p.MessageId, p.Type, p.Timestamp, p.AppId)
			}
		})
	}
}

func TestDeliverNilOutcome(t *testing.T) {
	t.Parallel()
	p, err := NewPublisher(PublisherConfig{URL: "amqp://guest:guest@127.0.0.1:1/"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Sink("", "q").Deliver(context.Background(), nil); err == nil {
		t.Fatal("Deliver(nil) succeeded")
	}
}

// A broker that accepts TCP but never answers the AMQP handshake: Deliver
// returns at its deadline, and Close ends the dial in progress at once.
func TestDeliverDeadlineSilentBroker(t *testing.T) {
	t.Parallel()
	p, err := NewPublisher(PublisherConfig{URL: "amqp://guest:guest@" + sinktest.BlackHole(t) + "/", Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = p.Sink("", "q").Deliver(ctx, &wire.Outcome{ID: "x"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Deliver: %v, want the context deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Deliver took %v with a 200ms deadline", d)
	}
	start = time.Now()
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v with a dial in progress", d)
	}
}

// fake is a pubChan over fake library channels: send hands out sequential
// tags (or fails), and the test plays the broker's returns and confirms.
type fake struct {
	c        *pubChan
	confirms chan amqp.Confirmation
	returns  chan amqp.Return
	closed   chan *amqp.Error
	sendErr  error
	block    chan struct{} // when set, send waits for it
	watched  chan struct{}
}

func newFake(t *testing.T) *fake {
	t.Helper()
	f := &fake{
		c:        newPubChan(1, discard()),
		confirms: make(chan amqp.Confirmation, 16),
		returns:  make(chan amqp.Return, 16),
		closed:   make(chan *amqp.Error, 1),
		watched:  make(chan struct{}),
	}
	var tag uint64
	f.c.send = func(string, string, amqp.Publishing) (uint64, error) {
		if f.block != nil {
			<-f.block
		}
		if f.sendErr != nil {
			return 0, f.sendErr
		}
		tag++
		return tag, nil
	}
	f.c.spawn = func(fn func()) bool { go fn(); return true }
	f.c.isClosed = func() bool { return false }
	f.c.abort = func() {}
	f.c.confirms, f.c.returns, f.c.chClosed = f.confirms, f.returns, f.closed
	go func() {
		defer close(f.watched)
		f.c.watch()
	}()
	t.Cleanup(func() {
		select {
		case <-f.watched:
		default:
			f.shut(nil)
		}
	})
	return f
}

// publish publishes a message with id and returns its outcome channel.
func (f *fake) publish(t *testing.T, id string) <-chan error {
	t.Helper()
	done, err := f.c.publish(context.Background(), "", "q", amqp.Publishing{MessageId: id})
	if err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
	return done
}

// shut closes the channel as the library does: close reason, then the
// listeners.
func (f *fake) shut(reason *amqp.Error) {
	if reason != nil {
		f.closed <- reason
	}
	close(f.closed)
	close(f.returns)
	close(f.confirms)
	<-f.watched
}

func outcome(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("publish not settled")
		return nil
	}
}

func TestWatchSettles(t *testing.T) {
	t.Parallel()
	ret := func(id string) amqp.Return {
		return amqp.Return{MessageId: id, ReplyCode: 312, ReplyText: "NO_ROUTE", RoutingKey: "q"}
	}
	for _, tc := range []struct {
		name  string
		ids   []string
		play  func(f *fake)
		wants []error // nil, or the sentinel the outcome must match
	}{
		{"Ack", []string{"a"}, func(f *fake) { f.confirms <- amqp.Confirmation{DeliveryTag: 1, Ack: true} }, []error{nil}},
		{"Nack", []string{"a"}, func(f *fake) { f.confirms <- amqp.Confirmation{DeliveryTag: 1} }, []error{ErrNacked}},
		{"ReturnThenAck", []string{"a", "b"}, func(f *fake) {
			f.returns <- ret("b")
			f.confirms <- amqp.Confirmation{DeliveryTag: 1, Ack: true}
			f.confirms <- amqp.Confirmation{DeliveryTag: 2, Ack: true}
		}, []error{nil, ErrUnroutable}},
		{"SameIDTwiceFirstReturned", []string{"a", "a"}, func(f *fake) {
			f.returns <- ret("a")
			f.confirms <- amqp.Confirmation{DeliveryTag: 1, Ack: true}
			f.confirms <- amqp.Confirmation{DeliveryTag: 2, Ack: true}
		}, []error{ErrUnroutable, nil}},
		{"OutOfOrderConfirms", []string{"a", "b"}, func(f *fake) {
			f.confirms <- amqp.Confirmation{DeliveryTag: 2, Ack: true}
			f.confirms <- amqp.Confirmation{DeliveryTag: 1}
		}, []error{ErrNacked, nil}},
		{"ChannelClosed", []string{"a", "b"}, func(f *fake) {
			f.confirms <- amqp.Confirmation{DeliveryTag: 1, Ack: true}
			f.shut(&amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND - no exchange 'x'"})
		}, []error{nil, ErrNotConfirmed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t)
			dones := make([]<-chan error, len(tc.ids))
			for i, id := range tc.ids {
				dones[i] = f.publish(t, id)
			}
			tc.play(f)
			for i, want := range tc.wants {
				got := outcome(t, dones[i])
				if want == nil && got != nil || want != nil && !errors.Is(got, want) {
					t.Errorf("publish %d (%s): %v, want %v", i+1, tc.ids[i], got, want)
				}
			}
		})
	}
}

func TestWatchChannelLoss(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	done := f.publish(t, "a")
	f.shut(&amqp.Error{Code: amqp.NotFound, Reason: "NOT_FOUND - no exchange 'x'"})
	err := outcome(t, done)
	var aerr *amqp.Error
	if !errors.Is(err, ErrNotConfirmed) || !errors.As(err, &aerr) || aerr.Code != amqp.NotFound {
		t.Fatalf("pending publish after the channel closed: %v, want ErrNotConfirmed wrapping the 404", err)
	}
	if f.c.alive() {
		t.Fatal("channel still alive after it closed")
	}
	if _, err := f.c.publish(context.Background(), "", "q", amqp.Publishing{}); !errors.Is(err, ErrNotConfirmed) {
		t.Fatalf("publish on the dead channel: %v, want ErrNotConfirmed", err)
	}
	if !f.c.waitIdle(nil) {
		t.Fatal("waitIdle on a dead channel did not return true")
	}
}

func TestWatchClosingAndSendFailure(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.sendErr = amqp.ErrClosed
	if err := outcome(t, f.publish(t, "a")); !errors.Is(err, amqp.ErrClosed) {
		t.Fatalf("publish with a failing send: %v", err)
	}
	f.sendErr = nil
	done := f.publish(t, "b") // tag 1 again: the failed send took no tag
	f.c.closing.Store(true)
	timeout := make(chan time.Time)
	idle := make(chan bool, 1)
	go func() { idle <- f.c.waitIdle(timeout) }()
	f.shut(nil)
	if err := outcome(t, done); !errors.Is(err, ErrClosed) {
		t.Fatalf("pending publish at Close: %v, want ErrClosed", err)
	}
	if !<-idle {
		t.Fatal("waitIdle reported a timeout")
	}
}

func TestPublishHonoursContext(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.c.sem <- struct{}{} // another publish holds the slot
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := f.c.publish(ctx, "", "q", amqp.Publishing{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publish while the slot is held: %v, want the deadline", err)
	}
	<-f.c.sem
}

// A frame write that blocks (the broker blocks publishers) holds the
// publish slot but not the caller: its wait ends with its context, later
// publishes wait for the slot with theirs, and once the write completes
// the confirm settles it as usual.
func TestBlockedWriteHonoursContext(t *testing.T) {
	t.Parallel()
	f := newFake(t)
	f.block = make(chan struct{})
	done := f.publish(t, "a")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	select {
	case err := <-done:
		t.Fatalf("settled while the write is blocked: %v", err)
	case <-ctx.Done():
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := f.c.publish(ctx2, "", "q", amqp.Publishing{MessageId: "b"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second publish during the blocked write: %v, want the deadline", err)
	}
	close(f.block)
	f.confirms <- amqp.Confirmation{DeliveryTag: 1, Ack: true}
	if err := outcome(t, done); err != nil {
		t.Fatalf("blocked publish once unblocked: %v", err)
	}
	next := f.publish(t, "c") // tag 2: the slot is free again
	f.confirms <- amqp.Confirmation{DeliveryTag: 2, Ack: true}
	if err := outcome(t, next); err != nil {
		t.Fatalf("publish after the blocked one: %v", err)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
