package rabbitmq

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// hookFrames is frames with a hook run inside the first Ack, while the
// acker sends it.
type hookFrames struct {
	frames
	once sync.Once
	hook func()
}

func (h *hookFrames) Ack(tag uint64, multiple bool) error {
	h.once.Do(h.hook)
	return h.frames.Ack(tag, multiple)
}

// Settlements that arrive while a `multiple` ack is being sent return at
// once and are covered by one `multiple` ack sent after it (group commit).
func TestAckerCoalescesDuringSend(t *testing.T) {
	t.Parallel()
	h := &hookFrames{}
	a := newAcker(h, never)
	for tag := uint64(1); tag <= 4; tag++ {
		a.add(tag)
	}
	h.hook = func() {
		// Another worker settles 2 and 3 while 1's ack is on the wire.
		done := make(chan error)
		go func() { done <- errors.Join(a.settle(2, true), a.settle(3, true)) }()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if err := a.settle(1, true); err != nil {
		t.Fatal(err)
	}
	if want := []string{"ack<=1", "ack<=3"}; !slices.Equal(h.got(), want) {
		t.Fatalf("frames %q, want %q", h.got(), want)
	}
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	if c := a.counts(); c.multiple != 2 || c.single != 0 {
		t.Fatalf("counts %+v, want 2 multiple acks", c)
	}
}

// lockedBroker is broker for concurrent use: frames checked under a lock,
// violations collected instead of failing from another goroutine.
type lockedBroker struct {
	mu   sync.Mutex
	b    *broker
	errs []string
}

func (l *lockedBroker) Ack(tag uint64, multiple bool) error {
	time.Sleep(20 * time.Microsecond) // a frame write: settlements pile up meanwhile
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.b.unacked[tag] {
		l.errs = append(l.errs, fmt.Sprintf("ack %d: unknown delivery tag", tag))
		return nil
	}
	for u := range l.b.unacked {
		if u == tag || multiple && u < tag {
			if l.b.client[u] != 1 {
				l.errs = append(l.errs, fmt.Sprintf("ack of %d acks %d, outcome %d", tag, u, l.b.client[u]))
			}
			delete(l.b.unacked, u)
			l.b.acked[u] = true
		}
	}
	return nil
}

func (l *lockedBroker) Nack(tag uint64, _, _ bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.b.unacked[tag] || l.b.client[tag] != -1 {
		l.errs = append(l.errs, fmt.Sprintf("nack %d: unacked %t outcome %d", tag, l.b.unacked[tag], l.b.client[tag]))
	}
	delete(l.b.unacked, tag)
	l.b.requeued[tag] = true
	return nil
}

// Eight workers settle 5,000 deliveries concurrently, out of order, some
// nacked: the broker never sees an invalid frame, every outcome reaches it
// by close, and `multiple` acks cover many deliveries each.
func TestAckerConcurrentWorkers(t *testing.T) {
	t.Parallel()
	const n, workers = 5000, 8
	l := &lockedBroker{b: &broker{t: t, unacked: map[uint64]bool{}, client: map[uint64]int{},
		acked: map[uint64]bool{}, requeued: map[uint64]bool{}}}
	a := newAcker(l, never)
	tags := make(chan uint64, 64)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for tag := range tags {
				good := rng.IntN(50) != 0
				l.mu.Lock()
				l.b.client[tag] = map[bool]int{true: 1, false: -1}[good]
				l.mu.Unlock()
				if err := a.settle(tag, good); err != nil {
					t.Errorf("settle(%d): %v", tag, err)
				}
			}
		})
	}
	for tag := uint64(1); tag <= n; tag++ {
		l.mu.Lock()
		l.b.unacked[tag] = true
		l.mu.Unlock()
		a.add(tag)
		tags <- tag
	}
	close(tags)
	wg.Wait()
	if err := a.close(); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) > 0 {
		t.Fatalf("%d invalid frames, first: %s", len(l.errs), l.errs[0])
	}
	if len(l.b.unacked) != 0 {
		t.Fatalf("%d deliveries unacked on the broker after close", len(l.b.unacked))
	}
	c := a.counts()
	acks := len(l.b.acked)
	if c.multiple+c.single >= acks/2 {
		t.Errorf("%d ack frames (%d multiple, %d single) for %d acks: want them coalesced", c.multiple+c.single, c.multiple, c.single, acks)
	}
	t.Logf("%d acks in %d multiple + %d single frames, %d nacks", acks, c.multiple, c.single, c.nack)
}
