package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// committer commits settled offsets every CommitInterval until Close.
func (s *Source) committer() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			r := s.reader
			s.mu.Unlock()
			if r == nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
			_ = s.flush(ctx, r) // failures are logged and retried on the next tick
			cancel()
		}
	}
}

// flush commits, through reader r, the highest offset settled contiguously
// of every partition that moved since the last commit. A failure (a stale
// generation during a rebalance, a broker loss) is logged and returned; the
// offsets stay pending and the next flush commits them.
func (s *Source) flush(ctx context.Context, r *kafkago.Reader) error {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	s.mu.Lock()
	offs := s.cp.toCommit()
	s.mu.Unlock()
	if len(offs) == 0 {
		return nil
	}
	msgs := make([]kafkago.Message, 0, len(offs))
	for p, off := range offs {
		// kafka-go commits off+1: the next offset to read.
		msgs = append(msgs, kafkago.Message{Topic: s.cfg.Topic, Partition: p, Offset: off})
	}
	if err := r.CommitMessages(ctx, msgs...); err != nil {
		s.log.Warn("commit failed; will retry", "offsets", offs, "err", err)
		return fmt.Errorf("kafka: commit %v: %w", offs, err)
	}
	s.mu.Lock()
	s.cp.markCommitted(offs)
	s.mu.Unlock()
	return nil
}

// partitions asks a broker for the topic's partition ids over a fresh
// connection (kafka-go's Transport answers metadata from its cache, so it
// cannot tell that the brokers are gone); it fails when no broker answers
// or the topic does not exist.
func (s *Source) partitions(ctx context.Context) ([]int, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	d := &kafkago.Dialer{Timeout: probeTimeout, DualStack: true, ClientID: "ferry"}
	var errs []error
	for _, b := range s.cfg.Brokers {
		ids, err := readPartitions(ctx, d, b, s.cfg.Topic)
		if err == nil {
			return ids, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", b, err))
	}
	return nil, errors.Join(errs...)
}

func readPartitions(ctx context.Context, d *kafkago.Dialer, broker, topic string) ([]int, error) {
	conn, err := d.DialContext(ctx, "tcp", broker)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	ps, err := conn.ReadPartitions(topic)
	if err != nil {
		return nil, fmt.Errorf("topic %q: %w", topic, err)
	}
	ids := make([]int, 0, len(ps))
	for _, p := range ps {
		ids = append(ids, p.ID)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("topic %q not found", topic)
	}
	sort.Ints(ids)
	return ids, nil
}

// offsets returns the group's committed offset (-1: none) and the next
// offset to be written of each partition.
func (s *Source) offsets(ctx context.Context, parts []int) (committed, last map[int]int64, err error) {
	of, err := s.client.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{
		GroupID: s.cfg.Group,
		Topics:  map[string][]int{s.cfg.Topic: parts},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("offset fetch for group %q: %w", s.cfg.Group, err)
	}
	if of.Error != nil {
		return nil, nil, fmt.Errorf("offset fetch for group %q: %w", s.cfg.Group, of.Error)
	}
	committed = map[int]int64{}
	for _, p := range of.Topics[s.cfg.Topic] {
		if p.Error != nil {
			return nil, nil, fmt.Errorf("offset fetch for partition %d: %w", p.Partition, p.Error)
		}
		committed[p.Partition] = p.CommittedOffset
	}
	reqs := make([]kafkago.OffsetRequest, 0, 2*len(parts))
	for _, p := range parts {
		reqs = append(reqs, kafkago.FirstOffsetOf(p), kafkago.LastOffsetOf(p))
	}
	lo, err := s.client.ListOffsets(ctx, &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{s.cfg.Topic: reqs}})
	if err != nil {
		return nil, nil, fmt.Errorf("list offsets: %w", err)
	}
	last = map[int]int64{}
	for _, p := range lo.Topics[s.cfg.Topic] {
		if p.Error != nil {
			return nil, nil, fmt.Errorf("list offsets of partition %d: %w", p.Partition, p.Error)
		}
		last[p.Partition] = p.LastOffset
		if c, ok := committed[p.Partition]; !ok || c < 0 {
			// No commit yet: the group would begin at the first offset.
			committed[p.Partition] = -1
			if s.cfg.Start == StartEarliest {
				committed[p.Partition] = p.FirstOffset
			}
		}
	}
	return committed, last, nil
}

// pinLatest commits the newest offset of every partition that the group has
// no committed offset for, so that a new group starting at "latest" does not
// skip what is produced while it is down before its first own commit
// (kafka-go #904, #1319). Committing outside a generation only works while
// the group has no active member; otherwise the members' own commits apply
// and the failure is only logged.
func (s *Source) pinLatest(ctx context.Context, parts []int) error {
	committed, last, err := s.offsets(ctx, parts)
	if err != nil {
		return err
	}
	var pin []kafkago.OffsetCommit
	for _, p := range parts {
		if committed[p] < 0 {
			pin = append(pin, kafkago.OffsetCommit{Partition: p, Offset: last[p]})
		}
	}
	if len(pin) == 0 {
		return nil
	}
	res, err := s.client.OffsetCommit(ctx, &kafkago.OffsetCommitRequest{
		GroupID: s.cfg.Group, GenerationID: -1,
		Topics: map[string][]kafkago.OffsetCommit{s.cfg.Topic: pin},
	})
	if err == nil {
		for _, p := range res.Topics[s.cfg.Topic] {
			err = errors.Join(err, p.Error)
		}
	}
	if err != nil {
		s.log.Warn("could not pin the latest offsets of a new group", "err", err)
	}
	return nil
}

// Lag returns how many messages of the topic the group has not committed
// yet, summed over the partitions, as the brokers tell it (the committed
// offsets, not this Source's memory).
func (s *Source) Lag(ctx context.Context) (int64, error) {
	parts, err := s.PartitionLag(ctx)
	var lag int64
	for _, n := range parts {
		lag += n
	}
	return lag, err
}

// PartitionLag is the group's lag per partition of the topic (keyed by the
// partition number): the last offset less the committed one; 0 for a
// partition of a new group that starts at "latest".
func (s *Source) PartitionLag(ctx context.Context) (map[string]int64, error) {
	parts, err := s.partitions(ctx)
	if err != nil {
		return nil, fmt.Errorf("kafka: lag: %w", err)
	}
	committed, last, err := s.offsets(ctx, parts)
	if err != nil {
		return nil, fmt.Errorf("kafka: lag: %w", err)
	}
	out := make(map[string]int64, len(parts))
	for _, p := range parts {
		var d int64
		if c := committed[p]; c >= 0 { // c < 0: a new group at "latest", nothing behind
			d = max(0, last[p]-c)
		}
		out[strconv.Itoa(p)] = d
	}
	return out, nil
}
