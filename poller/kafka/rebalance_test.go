package kafka_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/kafka"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/poller/pollertest/sources"
)

type got struct {
	m   *poller.Message
	src int
}

// reader reads src until ctx ends and sends every message, tagged, to out.
func reader(ctx context.Context, wg *sync.WaitGroup, src poller.Source, id int, out chan<- got, errs chan<- error) {
	defer wg.Done()
	for {
		msgs, err := src.Read(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			errs <- err
			return
		}
		for _, m := range msgs {
			select {
			case out <- got{m, id}:
			case <-ctx.Done():
				return
			}
		}
	}
}

// TestRebalanceHandsOverInFlight: two Sources of one group share a
// 4-partition topic; the second is closed with messages in flight that it
// never acked, and the first then receives and acks them: none lost.
func TestRebalanceHandsOverInFlight(t *testing.T) {
	t.Parallel()
	tp, group := setup(t, 4)
	cfg := kafka.Config{Group: group, CommitInterval: 20 * time.Millisecond}
	a, b := sources.Kafka(t, tp, cfg), sources.Kafka(t, tp, cfg)
	pollertest.ConnectRetry(t, a, 30*time.Second)
	pollertest.ConnectRetry(t, b, 30*time.Second)

	out := make(chan got)
	errs := make(chan error, 2)
	var wgA, wgB sync.WaitGroup
	ctxA, cancelA := context.WithCancel(context.Background())
	ctxB, cancelB := context.WithCancel(context.Background())
	defer func() { cancelA(); cancelB(); wgA.Wait(); wgB.Wait() }()
	wgA.Add(1)
	go reader(ctxA, &wgA, a, 0, out, errs)
	wgB.Add(1)
	go reader(ctxB, &wgB, b, 1, out, errs)

	produced := 0
	produce := func(n int) { tp.Produce(t, pollertest.SeqMsgs(produced, n, "1")); produced += n }
	ackedByA := map[int]bool{}
	var heldByB []*poller.Message
	reads := 0
	deadline := time.After(90 * time.Second)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	produce(40)
	// Phase 1: keep producing until B holds a few unacked messages.
	for len(heldByB) < 5 {
		select {
		case g := <-out:
			reads++
			if g.src == 0 {
				ackedByA[pollertest.SeqOf(t, g.m)] = true
				pollertest.Ack(t, g.m, nil)
			} else {
				heldByB = append(heldByB, g.m)
			}
		case <-tick.C:
			if produced < 2000 {
				produce(20)
			}
		case err := <-errs:
			t.Fatalf("read: %v", err)
		case <-deadline:
			t.Fatalf("B never got messages (A acked %d of %d)", len(ackedByA), produced)
		}
	}
	// Close B without acking what it holds.
	cancelB()
	wgB.Wait()
	pollertest.Close(t, b)
	for _, m := range heldByB {
		if err := m.Ack(context.Background(), nil); err == nil {
			t.Fatalf("ack after Close of %s succeeded", m.ID)
		}
	}
	produce(40)
	for len(ackedByA) < produced {
		select {
		case g := <-out:
			reads++
			ackedByA[pollertest.SeqOf(t, g.m)] = true
			pollertest.Ack(t, g.m, nil)
		case err := <-errs:
			t.Fatalf("read: %v", err)
		case <-deadline:
			t.Fatalf("A acked %d of %d; B held %d", len(ackedByA), produced, len(heldByB))
		}
	}
	for _, m := range heldByB {
		if !ackedByA[pollertest.SeqOf(t, m)] {
			t.Fatalf("%s held by B never reached A", m.ID)
		}
	}
	waitBacklog(t, tp, group, 0, 30*time.Second)
	t.Logf("produced %d; B closed holding %d unacked; A acked all %d (%d reads, %d duplicates); lost 0",
		produced, len(heldByB), len(ackedByA), reads, reads-len(ackedByA))
}
