package redisstream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/poller/redisstream"
	"github.com/ferrydev/ferry/test/brokers"
)

// TestBrokerRestart restarts Redis while a consumer reads and acks: Read
// returns ErrNotConnected (or the client rides over the restart), Connect
// succeeds again, and every entry produced before and after the restart is
// read and acked; none lost. Redis runs with appendonly (test/brokers/up.sh),
// so the stream, the group and its pending list survive the restart.
func TestBrokerRestart(t *testing.T) {
	tp := setup(t)
	const before, after = 200, 100
	produce(t, tp, "m", before)
	src := tp.NewSource(t, "g", func(c *redisstream.Config) { c.Count = 10 })
	pollertest.Connect(t, src, 20*time.Second)

	var (
		mu         sync.Mutex
		seen       = map[string]int{}
		notConn    int
		reconnects int
	)
	halfway := make(chan struct{})
	stop := make(chan struct{})
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the consumer, paced at about 100 entries/s so the restart lands mid-stream
		defer wg.Done()
		errc <- consume(src, stop, halfway, before/3, func(m *poller.Message) {
			mu.Lock()
			seen[string(m.Payload)]++
			mu.Unlock()
		}, func(reconnected bool) {
			mu.Lock()
			if reconnected {
				reconnects++
			} else {
				notConn++
			}
			mu.Unlock()
		})
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()

	select {
	case <-halfway:
	case err := <-errc:
		t.Fatalf("consumer: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("consumer did not reach a third of the entries")
	}
	start := time.Now()
	brokers.Restart(t, "redis")
	t.Logf("redis restarted in %v", time.Since(start))
	msgs, _ := batch("m", before, after)
	tp.Produce(t, msgs)

	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		distinct := len(seen)
		mu.Unlock()
		if distinct == before+after && tp.Backlog(t, "g") == 0 {
			break
		}
		select {
		case err := <-errc:
			t.Fatalf("consumer: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart: %d of %d entries seen, backlog %d", distinct, before+after, tp.Backlog(t, "g"))
		}
		time.Sleep(50 * time.Millisecond) // polling a condition, not synchronising
	}
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for i := range before + after {
		switch c := seen[fmt.Sprintf("m-%d", i)]; {
		case c == 0:
			t.Errorf("m-%d lost", i)
		case c > 1:
			dups += c - 1
		}
	}
	t.Logf("N=%d lost=0 duplicated=%d; Read returned ErrNotConnected %d times, %d reconnects; recovered in %v",
		before+after, dups, notConn, reconnects, time.Since(start))
}

// consume reads and acks until stop is closed, reconnecting (with a short
// backoff) after ErrNotConnected. It closes halfway after n messages.
func consume(src *redisstream.Source, stop, halfway chan struct{}, n int, got func(*poller.Message), event func(reconnected bool)) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-stop
		cancel()
	}()
	pace := time.NewTicker(10 * time.Millisecond)
	defer pace.Stop()
	count := 0
	for {
		msgs, err := src.Read(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, poller.ErrNotConnected):
			event(false)
			for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
				cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
				err := src.Connect(cctx)
				ccancel()
				if err == nil {
					event(true)
					break
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(backoff):
				}
			}
			continue
		case err != nil:
			return fmt.Errorf("Read: %w", err)
		}
		for _, m := range msgs {
			select {
			case <-pace.C:
			case <-ctx.Done():
				return nil
			}
			got(m)
			if err := m.Ack(ctx, nil); err != nil {
				return fmt.Errorf("Ack %s: %w", m.ID, err)
			}
			if count++; count == n {
				close(halfway)
			}
		}
	}
}
