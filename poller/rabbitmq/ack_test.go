package rabbitmq

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

// frames records what an acker sends: "nack 3", "ack<=5" (multiple),
// "ack 7" (single).
type frames struct {
	mu   sync.Mutex // the acker's timer sends from its own goroutine
	sent []string
	fail error // returned by every call once set
}

func (f *frames) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

func (f *frames) Ack(tag uint64, multiple bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	if multiple {
		f.sent = append(f.sent, fmt.Sprintf("ack<=%d", tag))
	} else {
		f.sent = append(f.sent, fmt.Sprintf("ack %d", tag))
	}
	return nil
}

func (f *frames) Nack(tag uint64, multiple, requeue bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	if multiple || !requeue {
		return fmt.Errorf("nack %d: multiple=%t requeue=%t, want false, true", tag, multiple, requeue)
	}
	f.sent = append(f.sent, fmt.Sprintf("nack %d", tag))
	return nil
}

// A step of TestAckerFrames: ok(tag) acks, fail(tag) nacks, stall is the
// acker's timer firing with the front unmoved since it was armed.
func ok(tag int) int   { return tag }
func fail(tag int) int { return -tag }

const stall = 0

// stallNow does what the acker's timer does when the front has not moved.
func stallNow(a *acker) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_ = a.send(ackPlan{singles: a.t.stall(a.t.advances)})
}

// never is a patience the tests do not reach.
const never = time.Hour

func TestAckerFrames(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		tags   int   // deliveries 1..tags are read
		settle []int // in this order
		want   []string
		close  []string // frames sent by close
	}{
		{
			name:   "InOrderEachAdvances",
			tags:   3,
			settle: []int{ok(1), ok(2), ok(3)},
			want:   []string{"ack<=1", "ack<=2", "ack<=3"},
		},
		{
			name:   "ReverseOrderOneFrame",
			tags:   5,
			settle: []int{ok(5), ok(4), ok(3), ok(2), ok(1)},
			want:   []string{"ack<=5"},
		},
		{
			name:   "GapWaits",
			tags:   4,
			settle: []int{ok(2), ok(3), ok(4)},
			want:   nil,
			close:  []string{"ack 2", "ack 3", "ack 4"},
		},
		{
			name:   "GapClosesUpToNextOutstanding",
			tags:   6,
			settle: []int{ok(2), ok(3), ok(5), ok(1)},
			want:   []string{"ack<=3"},
			close:  []string{"ack 5"},
		},
		{
			name:   "NackIsImmediate",
			tags:   3,
			settle: []int{fail(2)},
			want:   []string{"nack 2"},
		},
		{
			name:   "MultipleAckSkipsNacked",
			tags:   4,
			settle: []int{fail(2), ok(3), ok(4), ok(1)},
			want:   []string{"nack 2", "ack<=4"},
		},
		{
			// The run ends with a nacked tag: the multiple ack names the
			// highest acked one, never the nacked one (unknown to the
			// broker by then: it would close the channel).
			name:   "RunEndingInNackNamesLastAck",
			tags:   4,
			settle: []int{ok(2), fail(3), ok(1)},
			want:   []string{"nack 3", "ack<=2"},
		},
		{
			name:   "NackAtFrontThenAck",
			tags:   3,
			settle: []int{ok(2), fail(1)},
			want:   []string{"nack 1", "ack<=2"},
		},
		{
			name:   "OnlyNacksNoAck",
			tags:   3,
			settle: []int{fail(2), fail(1), fail(3)},
			want:   []string{"nack 2", "nack 1", "nack 3"},
		},
		{
			// The stall sends the waiting acks alone, and later ones
			// too, until the front moves: then one multiple ack names the
			// front's only ack still unsent.
			name:   "StallSendsAlone",
			tags:   5,
			settle: []int{ok(3), ok(2), stall, ok(4), ok(1)},
			want:   []string{"ack 2", "ack 3", "ack 4", "ack<=1"},
		},
		{
			name:   "StallEndsWhenFrontMoves",
			tags:   6,
			settle: []int{ok(2), stall, ok(1), ok(4)},
			want:   []string{"ack 2", "ack<=1"},
			close:  []string{"ack 4"},
		},
		{
			name:   "StallWithNothingWaiting",
			tags:   3,
			settle: []int{fail(2), stall, ok(3)},
			want:   []string{"nack 2"},
			close:  []string{"ack 3"},
		},
		{
			name:   "FrontOfSentOnlyNoFrame",
			tags:   4,
			settle: []int{ok(2), ok(3), stall, fail(1)},
			want:   []string{"ack 2", "ack 3", "nack 1"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &frames{}
			a := newAcker(f, never)
			for tag := range tc.tags {
				a.add(uint64(tag + 1))
			}
			for _, s := range tc.settle {
				if s == stall {
					stallNow(a)
					continue
				}
				tag, good := s, true
				if s < 0 {
					tag, good = -s, false
				}
				if err := a.settle(uint64(tag), good); err != nil {
					t.Fatalf("settle(%d, %t): %v", tag, good, err)
				}
			}
			if !slices.Equal(f.sent, tc.want) {
				t.Errorf("frames after the settlements:\n got %q\nwant %q", f.sent, tc.want)
			}
			f.sent = nil
			if err := a.close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			if !slices.Equal(f.sent, tc.close) {
				t.Errorf("frames sent by close:\n got %q\nwant %q", f.sent, tc.close)
			}
		})
	}
}

func TestAckerErrors(t *testing.T) {
	t.Parallel()
	t.Run("SettleTwice", func(t *testing.T) {
		a := newAcker(&frames{}, never)
		a.add(1)
		a.add(2)
		if err := a.settle(2, true); err != nil {
			t.Fatal(err)
		}
		if err := a.settle(2, true); err == nil || errors.Is(err, ErrStaleDelivery) {
			t.Fatalf("second settle: %v, want a not-outstanding error", err)
		}
		if err := a.settle(9, true); err == nil {
			t.Fatal("settle of an unknown tag succeeded")
		}
	})
	t.Run("AfterClose", func(t *testing.T) {
		f := &frames{}
		a := newAcker(f, never)
		a.add(1)
		if err := a.close(); err != nil {
			t.Fatal(err)
		}
		if err := a.close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
		a.add(2)
		for _, tag := range []uint64{1, 2} {
			if err := a.settle(tag, true); !errors.Is(err, ErrStaleDelivery) {
				t.Fatalf("settle(%d) after close: %v, want ErrStaleDelivery", tag, err)
			}
		}
		if len(f.sent) != 0 {
			t.Fatalf("frames after close: %q", f.sent)
		}
	})
	t.Run("SendFails", func(t *testing.T) {
		closed := errors.New("channel closed")
		f := &frames{fail: closed}
		a := newAcker(f, never)
		a.add(1)
		a.add(2)
		for _, tc := range []struct {
			tag  uint64
			good bool
		}{{2, false}, {1, true}} {
			err := a.settle(tc.tag, tc.good)
			if !errors.Is(err, ErrStaleDelivery) || !errors.Is(err, closed) {
				t.Fatalf("settle(%d, %t) on a closed channel: %v, want ErrStaleDelivery wrapping the cause", tc.tag, tc.good, err)
			}
		}
	})
	t.Run("OutOfOrderAdd", func(t *testing.T) {
		f := &frames{}
		a := newAcker(f, never)
		for _, tag := range []uint64{1, 3, 2, 3} {
			a.add(tag)
		}
		for _, tag := range []uint64{3, 1, 2} {
			if err := a.settle(tag, true); err != nil {
				t.Fatal(err)
			}
		}
		if want := []string{"ack<=1", "ack<=3"}; !slices.Equal(f.sent, want) {
			t.Fatalf("frames %q, want %q", f.sent, want)
		}
	})
}

// broker models RabbitMQ's side of one channel: the unacked deliveries,
// and the way it handles ack and nack frames (rabbit_channel collect_acks:
// a multiple ack settles every unacked tag up to and including its tag,
// and any frame naming a tag that is not unacked closes the channel).
type broker struct {
	t        *testing.T
	unacked  map[uint64]bool
	client   map[uint64]int // the poller's outcome: 1 ack, -1 nack, 0 none yet
	acked    map[uint64]bool
	requeued map[uint64]bool
}

func (b *broker) check(tag uint64, what string) {
	b.t.Helper()
	if !b.unacked[tag] {
		b.t.Fatalf("%s %d: unknown delivery tag (the broker closes the channel)", what, tag)
	}
}

func (b *broker) Ack(tag uint64, multiple bool) error {
	b.check(tag, "ack")
	for u := range b.unacked {
		if u == tag || multiple && u < tag {
			if b.client[u] != 1 {
				b.t.Fatalf("ack of %d (multiple=%t) acks %d, whose outcome is %d", tag, multiple, u, b.client[u])
			}
			delete(b.unacked, u)
			b.acked[u] = true
		}
	}
	return nil
}

func (b *broker) Nack(tag uint64, multiple, requeue bool) error {
	b.check(tag, "nack")
	if multiple || !requeue || b.client[tag] != -1 {
		b.t.Fatalf("nack %d multiple=%t requeue=%t, outcome %d", tag, multiple, requeue, b.client[tag])
	}
	delete(b.unacked, tag)
	b.requeued[tag] = true
	return nil
}

// Deliveries are settled in random orders, some nacked, with reads and
// stalls interleaved: the broker model never sees an invalid frame or an
// ack covering an unsettled delivery, acks are sent as soon as every older
// delivery is settled, none waits while the front is stuck, and after
// close every ack has reached the broker.
func TestAckerRandom(t *testing.T) {
	t.Parallel()
	for seed := range uint64(300) {
		rng := rand.New(rand.NewPCG(seed, 7))
		n := 1 + rng.IntN(200)
		b := &broker{t: t, unacked: map[uint64]bool{}, client: map[uint64]int{},
			acked: map[uint64]bool{}, requeued: map[uint64]bool{}}
		a := newAcker(b, never)
		var open []uint64 // read, not settled
		next := uint64(1)
		for next <= uint64(n) || len(open) > 0 {
			if next <= uint64(n) && (len(open) == 0 || rng.IntN(3) == 0) {
				for range 1 + rng.IntN(8) {
					if next > uint64(n) {
						break
					}
					b.unacked[next] = true
					a.add(next)
					open = append(open, next)
					next++
				}
				continue
			}
			if rng.IntN(20) == 0 {
				stallNow(a)
			}
			i := rng.IntN(len(open))
			if rng.IntN(4) == 0 { // mostly near the front, as workers do
				i = 0
			}
			tag := open[i]
			open = slices.Delete(open, i, i+1)
			good := rng.IntN(10) != 0
			b.client[tag] = map[bool]int{true: 1, false: -1}[good]
			if err := a.settle(tag, good); err != nil {
				t.Fatalf("seed %d: settle(%d, %t): %v", seed, tag, good, err)
			}
			// Nothing acked waits unless an older delivery is outstanding.
			lowest := uint64(n + 1)
			if len(open) > 0 {
				lowest = slices.Min(open)
			}
			waiting := 0
			for u := range b.unacked {
				if b.client[u] == 1 {
					waiting++
					if u < lowest {
						t.Fatalf("seed %d: ack of %d waits though every older delivery is settled", seed, u)
					}
				}
			}
			if a.t.stuck && waiting > 0 {
				t.Fatalf("seed %d: %d acks waiting behind a stuck front", seed, waiting)
			}
			if waiting != a.t.waiting {
				t.Fatalf("seed %d: %d acks waiting, tracker counts %d", seed, waiting, a.t.waiting)
			}
		}
		if err := a.close(); err != nil {
			t.Fatalf("seed %d: close: %v", seed, err)
		}
		if len(b.unacked) != 0 {
			t.Fatalf("seed %d: unacked on the broker after close: %v", seed, b.unacked)
		}
		for tag, outcome := range b.client {
			if outcome == 1 && !b.acked[tag] || outcome == -1 && !b.requeued[tag] {
				t.Fatalf("seed %d: tag %d outcome %d, acked %t requeued %t", seed, tag, outcome, b.acked[tag], b.requeued[tag])
			}
		}
	}
}

// In-order settlement reuses the tracker's array: memory stays at the
// window, however many deliveries pass.
func TestTrackerInOrderStaysSmall(t *testing.T) {
	t.Parallel()
	var tr tracker
	for tag := uint64(1); tag <= 100_000; tag++ {
		tr.add(tag)
		if tag%8 == 0 {
			for u := tag - 7; u <= tag; u++ {
				if _, err := tr.settle(u, true); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if len(tr.live()) != 0 || tr.waiting != 0 || cap(tr.entries) > 16 {
		t.Fatalf("after 100k in order: %d tracked, cap %d, %d waiting", len(tr.live()), cap(tr.entries), tr.waiting)
	}
}

// The stall releases waiting acks only when the front has not moved since
// the timer was armed.
func TestTrackerStallAfterFrontMoved(t *testing.T) {
	t.Parallel()
	var tr tracker
	for tag := uint64(1); tag <= 4; tag++ {
		tr.add(tag)
	}
	since := tr.advances
	mustSettle := func(tag uint64) ackPlan {
		t.Helper()
		p, err := tr.settle(tag, true)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	mustSettle(3)
	if p := mustSettle(1); p.upTo != 1 {
		t.Fatalf("ack of the front: %+v, want upTo 1", p)
	}
	if got := tr.stall(since); got != nil || tr.stuck {
		t.Fatalf("stall after the front moved: %v stuck %t, want nothing", got, tr.stuck)
	}
	if got := tr.stall(tr.advances); !slices.Equal(got, []uint64{3}) || !tr.stuck {
		t.Fatalf("stall with the front unmoved: %v stuck %t, want [3] stuck", got, tr.stuck)
	}
}

// The acker's timer sends waiting acks alone once the front has not moved
// for its patience; close stops it.
func TestAckerTimer(t *testing.T) {
	t.Parallel()
	const patience = 20 * time.Millisecond
	waitFor := func(f *frames, want []string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !slices.Equal(f.got(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("frames %q, want %q", f.got(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	t.Run("Stall", func(t *testing.T) {
		t.Parallel()
		f := &frames{}
		a := newAcker(f, patience)
		for tag := uint64(1); tag <= 3; tag++ {
			a.add(tag)
		}
		if err := a.settle(2, true); err != nil {
			t.Fatal(err)
		}
		waitFor(f, []string{"ack 2"})
		for _, tag := range []uint64{3, 1} {
			if err := a.settle(tag, true); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(f, []string{"ack 2", "ack 3", "ack<=1"})
		if err := a.close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("CloseStops", func(t *testing.T) {
		t.Parallel()
		f := &frames{}
		a := newAcker(f, patience)
		a.add(1)
		a.add(2)
		if err := a.settle(2, true); err != nil {
			t.Fatal(err)
		}
		if err := a.close(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * patience) // a timer left running would send again
		if want := []string{"ack 2"}; !slices.Equal(f.got(), want) {
			t.Fatalf("frames %q, want %q", f.got(), want)
		}
	})
}

// TestAckerCoalesces: while deliveries are outstanding, the settled front
// goes out as one `multiple` ack per coalesce tags, or after ackLinger;
// with nothing outstanding it goes out at once.
func TestAckerCoalesces(t *testing.T) {
	t.Parallel()
	f := &frames{}
	a := newAcker(f, never)
	a.coalesce = 4
	for tag := uint64(1); tag <= 10; tag++ {
		a.add(tag)
	}
	settle := func(tags ...uint64) {
		t.Helper()
		for _, tag := range tags {
			if err := a.settle(tag, true); err != nil {
				t.Fatal(err)
			}
		}
	}
	settle(1, 2, 3)
	if got := f.got(); len(got) != 0 {
		t.Fatalf("frames after 3 of 4: %q, want none yet", got)
	}
	settle(4)
	if got := f.got(); !slices.Equal(got, []string{"ack<=4"}) {
		t.Fatalf("frames after 4: %q, want ack<=4", got)
	}
	settle(5)
	ferrytest.WaitFor(t, 5*time.Second, "the lingering ack", func() bool { return slices.Equal(f.got(), []string{"ack<=4", "ack<=5"}) })
	settle(6, 7, 8, 9, 10) // nothing outstanding after 10: no waiting
	if got := f.got(); !slices.Equal(got, []string{"ack<=4", "ack<=5", "ack<=9", "ack<=10"}) &&
		!slices.Equal(got, []string{"ack<=4", "ack<=5", "ack<=10"}) {
		t.Fatalf("frames: %q, want the front acked by 9 (4 more) and at 10 (all settled)", got)
	}
}
