package kafka

import "sort"

// checkpoint tracks, per partition, which offsets were delivered and which
// were settled, so that only the highest offset settled contiguously is ever
// committed (never past an unsettled message), whatever order acks come in.
// It is not safe for concurrent use: Source guards it with its mutex.
type checkpoint struct {
	parts map[int]*partState
}

// partState is one partition's bookkeeping.
type partState struct {
	// pending are the offsets read, in read order (ascending), that are
	// not yet settled contiguously.
	pending []int64
	// acked are settled offsets above settled (acked out of order, or by a
	// copy delivered before a re-read). A re-read of one of them is settled
	// at once instead of being delivered again.
	acked map[int64]struct{}
	// settled is the highest offset settled contiguously; -1: none yet.
	settled int64
	// committed is the highest offset committed to Kafka; -1: none yet.
	committed int64
	// last is the offset read last, by the reader of epoch; a read at or
	// below it (or by a new reader) is a resume.
	last  int64
	epoch uint64
}

func newCheckpoint() *checkpoint {
	return &checkpoint{parts: map[int]*partState{}}
}

func (c *checkpoint) part(p int) *partState {
	ps, ok := c.parts[p]
	if !ok {
		ps = &partState{acked: map[int64]struct{}{}, settled: -1, committed: -1, last: -1}
		c.parts[p] = ps
	}
	return ps
}

// read records that offset off of partition p was fetched by the reader of
// the given epoch. It reports whether the message must be delivered; false
// means it is already settled (a re-read after a rewind or a rebalance).
//
// pending survives re-reads: offsets are immutable, so a reader that starts
// again from the committed offset fetches the same sequence, and acks given
// to the earlier copies still count (a nacked message's redelivery, once
// acked, settles the acked messages after it at once).
func (c *checkpoint) read(p int, off int64, epoch uint64) bool {
	ps := c.part(p)
	resume := epoch != ps.epoch || off <= ps.last
	ps.epoch, ps.last = epoch, off
	if off <= ps.settled {
		return false
	}
	if resume {
		// The reader (re)started at off: pending offsets below it are past
		// the group's committed position (settled by another member).
		i := sort.Search(len(ps.pending), func(i int) bool { return ps.pending[i] >= off })
		ps.pending = append(ps.pending[:0], ps.pending[i:]...)
		for o := range ps.acked {
			if o < off {
				delete(ps.acked, o)
			}
		}
	}
	i := sort.Search(len(ps.pending), func(i int) bool { return ps.pending[i] >= off })
	switch {
	case i < len(ps.pending) && ps.pending[i] == off:
		// A re-read of a known offset.
	case i == len(ps.pending):
		ps.pending = append(ps.pending, off)
	default:
		// Not the sequence read before (cannot happen with immutable
		// offsets): forget the rest of it, it will be read again.
		ps.pending = append(ps.pending[:i], off)
	}
	if _, ok := ps.acked[off]; ok {
		ps.advance()
		return false
	}
	return true
}

// ack records that offset off of partition p was settled.
func (c *checkpoint) ack(p int, off int64) {
	ps := c.part(p)
	if off <= ps.settled {
		return
	}
	ps.acked[off] = struct{}{}
	ps.advance()
}

// advance pops the settled prefix of pending.
func (ps *partState) advance() {
	n := 0
	for n < len(ps.pending) {
		if _, ok := ps.acked[ps.pending[n]]; !ok {
			break
		}
		delete(ps.acked, ps.pending[n])
		ps.settled = ps.pending[n]
		n++
	}
	if n > 0 {
		ps.pending = append(ps.pending[:0], ps.pending[n:]...)
	}
}

// toCommit returns, per partition, the settled offset not yet committed.
func (c *checkpoint) toCommit() map[int]int64 {
	out := map[int]int64{}
	for p, ps := range c.parts {
		if ps.settled > ps.committed {
			out[p] = ps.settled
		}
	}
	return out
}

// committed records that offsets (partition → last settled offset) were
// committed.
func (c *checkpoint) markCommitted(offsets map[int]int64) {
	for p, off := range offsets {
		if ps := c.part(p); off > ps.committed {
			ps.committed = off
		}
	}
}
