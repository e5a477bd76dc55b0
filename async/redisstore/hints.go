package redisstore

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// hinter keeps the global ready hint ({P}:ready) in step with the tenants'
// queues. A tenant script returns the tenant's new earliest ready time
// with a sequence number; the hinter applies the newest per tenant in one
// call (a script on the global slot, so tenant scripts never touch another
// slot), then publishes a wake-up when a tenant became ready sooner than
// the hint said, or a change asked for one (slots freed at a limit). A
// lease that finds nothing never wakes anyone, so idle nodes stay idle.
// The upkeep repairs what a node killed between the two left behind.
type hinter struct {
	q      *Queue
	mu     sync.Mutex
	todo   map[string]hintUpdate
	wake   bool
	signal chan struct{}
}

type hintUpdate struct {
	seq      int64
	earliest int64 // ms, -1: nothing queued
}

func newHinter(q *Queue) *hinter {
	return &hinter{q: q, todo: map[string]hintUpdate{}, signal: make(chan struct{}, 1)}
}

// note records a tenant's state from a script result (seq 0: unchanged);
// wake asks for a wake-up of every node once it is applied.
func (h *hinter) note(tenant string, seq any, earliest any, wake bool) {
	s, e := num(seq), num(earliest)
	if s <= 0 && !wake {
		return
	}
	h.mu.Lock()
	if s > 0 && s > h.todo[tenant].seq {
		h.todo[tenant] = hintUpdate{seq: s, earliest: e}
	}
	h.wake = h.wake || wake
	h.mu.Unlock()
	select {
	case h.signal <- struct{}{}:
	default:
	}
}

// now applies one tenant's hint at once (for a change that may have made
// a task ready: the caller's next Lease, on any node, must see it) and
// signals this node's Ready; it publishes a wake-up to every node when the
// tenant became ready sooner or wake asks for one.
func (h *hinter) now(ctx context.Context, tenant string, seq, earliest any, wake bool) error {
	defer h.q.signal()
	s := num(seq)
	todo := map[string]hintUpdate{}
	if s > 0 {
		todo[tenant] = hintUpdate{seq: s, earliest: num(earliest)}
	}
	sooner, err := h.apply(ctx, todo)
	if err != nil {
		h.note(tenant, seq, earliest, wake) // the flusher tries again
		return err
	}
	if sooner > 0 || wake {
		h.q.gen.Add(1)
		return h.q.rdb.Publish(ctx, h.q.keys.wake(), "1").Err()
	}
	return nil
}

// run applies the hints as they come until ctx ends.
func (h *hinter) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.signal:
		}
		h.flush(ctx)
	}
}

// flush applies the collected hints and publishes the wake-up; on failure
// they are kept (newer ones replace them) and tried again.
func (h *hinter) flush(ctx context.Context) {
	h.mu.Lock()
	todo, wake := h.todo, h.wake
	h.todo, h.wake = map[string]hintUpdate{}, false
	h.mu.Unlock()
	if len(todo) == 0 && !wake {
		return
	}
	q := h.q
	sooner, err := h.apply(ctx, todo)
	wake = wake || sooner > 0
	if wake {
		q.gen.Add(1)
	}
	if err == nil && wake {
		err = q.rdb.Publish(ctx, q.keys.wake(), "1").Err()
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		q.log.Warn("redis store: cannot update the ready hints; retrying", "error", err)
		h.mu.Lock()
		for t, u := range todo {
			if u.seq > h.todo[t].seq {
				h.todo[t] = u
			}
		}
		h.wake = h.wake || wake
		h.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		select {
		case h.signal <- struct{}{}:
		default:
		}
		return
	}
	if wake {
		q.signal()
	}
}

// apply writes the hints and returns how many tenants became ready
// sooner.
func (h *hinter) apply(ctx context.Context, todo map[string]hintUpdate) (int64, error) {
	if len(todo) == 0 {
		return 0, nil
	}
	args := make([]any, 0, 3*len(todo))
	for t, u := range todo {
		args = append(args, t, strconv.FormatInt(u.seq, 10), strconv.FormatInt(u.earliest, 10))
	}
	k := h.q.keys
	return scriptHints.Run(ctx, h.q.rdb, []string{k.ready(), k.seq()}, args...).Int64()
}
