package redisstream

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/poller"
)

const (
	// ackChunk is the most ids one XACK carries.
	ackChunk = 1000
	// ackRetry is how long the committer waits after a failed XACK.
	ackRetry = 250 * time.Millisecond
)

// deliver records entries as in flight and turns them into Messages with
// their Ack. With known set (re-reads of pending entries and claims), entries
// already in flight or just settled are skipped: they are being handled.
// Entries deleted from the stream while pending (XDEL, MAXLEN trimming)
// have no fields: they cannot be delivered and are XACKed away.
func (s *Source) deliver(entries []redis.XMessage, known bool) []*poller.Message {
	if len(entries) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	out := make([]*poller.Message, 0, len(entries))
	deleted := 0
	for _, e := range entries {
		if known {
			if _, ok := s.inflight[e.ID]; ok {
				continue
			}
			if _, ok := s.settled[e.ID]; ok {
				continue
			}
		}
		s.inflight[e.ID] = now
		if len(e.Values) == 0 {
			deleted++
			s.toAck = append(s.toAck, e.ID)
			continue
		}
		m := s.toMessage(e.ID, e.Values)
		m.Ack = s.ackFunc(e.ID)
		out = append(out, m)
	}
	if deleted > 0 {
		s.log.Warn("pending entries were deleted from the stream; acknowledging them", "count", deleted)
		s.wake()
	}
	return out
}

// ackFunc is the Ack of one entry: nil settles it (XACK, batched), an error
// leaves it pending for redelivery. Only the first call counts.
func (s *Source) ackFunc(id string) poller.AckFunc {
	var once atomic.Bool
	return func(_ context.Context, err error) error {
		if !once.CompareAndSwap(false, true) {
			return fmt.Errorf("redisstream: entry %s of %s settled twice", id, s.cfg.Stream)
		}
		if err != nil {
			s.nack(id)
			return nil
		}
		return s.ack(id)
	}
}

// ack queues id for the committer's next XACK.
func (s *Source) ack(id string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("redisstream: ack %s of %s: %w (the entry stays pending and will be delivered again)", id, s.cfg.Stream, ErrClosed)
	}
	s.toAck = append(s.toAck, id)
	s.mu.Unlock()
	s.wake()
	return nil
}

// nack leaves id pending and makes the next Read re-read this consumer's
// pending entries from "0", which returns id again (with its delivery count
// incremented by Redis).
func (s *Source) nack(id string) {
	s.mu.Lock()
	delete(s.inflight, id)
	s.rescan, s.rescanFrom = true, "0"
	s.rescanGen++
	s.mu.Unlock()
}

// wake nudges the committer without blocking.
func (s *Source) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// beginScan and endScan bracket a re-read or claim whose reply may list
// entries that are XACKed while it runs (see settled).
func (s *Source) beginScan() {
	s.mu.Lock()
	s.scanning++
	s.mu.Unlock()
}

func (s *Source) endScan() {
	s.mu.Lock()
	s.scanning--
	if s.scanning == 0 && len(s.settled) > 0 {
		clear(s.settled)
	}
	s.mu.Unlock()
}

// commitLoop is the committer: it XACKs acknowledged entries in batches
// (whatever accumulated while the previous XACK ran) and touches in-flight
// entries so other consumers do not claim them. It stops when Close closes
// s.stop; Close then flushes what is left.
func (s *Source) commitLoop(client *redis.Client) {
	defer close(s.done)
	touchEvery := s.cfg.ClaimIdle / 3
	touch := time.NewTicker(touchEvery)
	defer touch.Stop()
	var retry <-chan time.Time
	for {
		select {
		case <-s.stop:
			return
		case <-touch.C:
			if err := s.touch(client, touchEvery); err != nil {
				s.log.Warn("touching in-flight entries failed", "err", err)
			}
			continue
		case <-s.kick:
		case <-retry:
		}
		retry = nil
		if err := s.flush(context.Background(), client); err != nil {
			s.log.Warn("XACK failed; retrying", "err", err)
			retry = time.After(ackRetry)
		}
	}
}

// flush XACKs every queued entry. Entries whose XACK failed are queued
// again and the error returned.
func (s *Source) flush(ctx context.Context, client *redis.Client) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	ids := s.toAck
	s.toAck = nil
	s.mu.Unlock()
	for len(ids) > 0 {
		n := min(len(ids), ackChunk)
		cctx, cancel := context.WithTimeout(ctx, opTimeout)
		err := client.XAck(cctx, s.cfg.Stream, s.cfg.Group, ids[:n]...).Err()
		cancel()
		s.mu.Lock()
		if err != nil {
			s.toAck = append(ids, s.toAck...)
			s.mu.Unlock()
			return fmt.Errorf("XACK %d entries of %s: %w", len(ids), s.cfg.Stream, err)
		}
		for _, id := range ids[:n] {
			delete(s.inflight, id)
			if s.scanning > 0 {
				s.settled[id] = struct{}{}
			}
		}
		s.mu.Unlock()
		ids = ids[n:]
	}
	return nil
}

// touch resets the idle time of in-flight entries delivered (or touched)
// at least every ago, so that XAUTOCLAIM in other consumers (ClaimIdle)
// leaves them alone while Ferry still works on them. Only entries still in
// this consumer's pending list are touched (XPENDING ... consumer, then
// XCLAIM ... JUSTID, which does not count as a delivery): one another
// consumer claimed while this one was cut off is not taken back.
func (s *Source) touch(client *redis.Client, every time.Duration) error {
	now := time.Now()
	s.mu.Lock()
	var lo, hi string
	due := make(map[string]struct{})
	for id, t := range s.inflight {
		if now.Sub(t) < every {
			continue
		}
		due[id] = struct{}{}
		if lo == "" || compareIDs(id, lo) < 0 {
			lo = id
		}
		if hi == "" || compareIDs(id, hi) > 0 {
			hi = id
		}
	}
	s.mu.Unlock()
	if len(due) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	pending, err := client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: s.cfg.Stream, Group: s.cfg.Group, Consumer: s.cfg.Consumer,
		Idle: every, Start: lo, End: hi, Count: int64(len(due) + s.cfg.Count),
	}).Result()
	if err != nil {
		return fmt.Errorf("XPENDING %s: %w", s.cfg.Stream, err)
	}
	ids := make([]string, 0, len(pending))
	for _, p := range pending {
		if _, ok := due[p.ID]; ok {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	touched, err := client.XClaimJustID(ctx, &redis.XClaimArgs{
		Stream: s.cfg.Stream, Group: s.cfg.Group, Consumer: s.cfg.Consumer,
		MinIdle: every, Messages: ids,
	}).Result()
	if err != nil {
		return fmt.Errorf("XCLAIM JUSTID %d entries of %s: %w", len(ids), s.cfg.Stream, err)
	}
	s.mu.Lock()
	for _, id := range touched {
		if _, ok := s.inflight[id]; ok {
			s.inflight[id] = now
		}
	}
	s.mu.Unlock()
	return nil
}
