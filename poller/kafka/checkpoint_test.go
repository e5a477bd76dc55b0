package kafka

import (
	"reflect"
	"testing"
)

func TestCheckpointCommitsOnlyContiguous(t *testing.T) {
	c := newCheckpoint()
	for off := int64(10); off < 15; off++ {
		if !c.read(0, off, 1) {
			t.Fatalf("offset %d not delivered", off)
		}
	}
	c.ack(0, 12)
	c.ack(0, 11)
	if got := c.toCommit(); len(got) != 0 {
		t.Fatalf("committed past unacked 10: %v", got)
	}
	c.ack(0, 10)
	if got, want := c.toCommit(), map[int]int64{0: 12}; !reflect.DeepEqual(got, want) {
		t.Fatalf("toCommit = %v, want %v", got, want)
	}
	c.markCommitted(map[int]int64{0: 12})
	c.ack(0, 14) // 13 still pending
	if got := c.toCommit(); len(got) != 0 {
		t.Fatalf("committed past unacked 13: %v", got)
	}
}

func TestCheckpointReReadSkipsSettled(t *testing.T) {
	c := newCheckpoint()
	for off := int64(0); off < 5; off++ {
		c.read(0, off, 1)
	}
	c.ack(0, 0)
	c.ack(0, 2)
	c.ack(0, 4) // 1 nacked, 3 still in flight
	// A new reader (epoch 2) starts at the committed offset, say 0.
	var delivered []int64
	for off := int64(0); off < 6; off++ {
		if c.read(0, off, 2) {
			delivered = append(delivered, off)
		}
	}
	if want := []int64{1, 3, 5}; !reflect.DeepEqual(delivered, want) {
		t.Fatalf("re-read delivered %v, want %v", delivered, want)
	}
	c.ack(0, 1)
	if got, want := c.toCommit(), map[int]int64{0: 2}; !reflect.DeepEqual(got, want) {
		t.Fatalf("toCommit = %v, want %v", got, want)
	}
	c.ack(0, 3) // the old copy's ack settles the new copy too
	c.ack(0, 5)
	if got, want := c.toCommit(), map[int]int64{0: 5}; !reflect.DeepEqual(got, want) {
		t.Fatalf("toCommit = %v, want %v", got, want)
	}
}

func TestCheckpointNackRedeliveryAckSettlesLaterAcks(t *testing.T) {
	c := newCheckpoint()
	for off := int64(0); off < 10; off++ {
		c.read(0, off, 1)
	}
	for off := int64(0); off < 10; off++ {
		if off != 3 { // 3 nacked
			c.ack(0, off)
		}
	}
	if !c.read(0, 3, 2) { // redelivered by the new reader
		t.Fatal("nacked 3 not delivered again")
	}
	c.ack(0, 3) // 4..9 not read again yet, but known acked
	if got, want := c.toCommit(), map[int]int64{0: 9}; !reflect.DeepEqual(got, want) {
		t.Fatalf("toCommit = %v, want %v", got, want)
	}
}

func TestCheckpointRebalanceResume(t *testing.T) {
	c := newCheckpoint()
	c.read(1, 5, 1)
	c.read(1, 6, 1)
	c.ack(1, 6)
	// Partition re-assigned: the group re-reads from 5 within the same reader.
	if !c.read(1, 5, 1) {
		t.Fatal("re-read of unsettled 5 not delivered")
	}
	if c.read(1, 6, 1) {
		t.Fatal("re-read of acked 6 delivered again")
	}
	c.ack(1, 5)
	if got, want := c.toCommit(), map[int]int64{1: 6}; !reflect.DeepEqual(got, want) {
		t.Fatalf("toCommit = %v, want %v", got, want)
	}
	// 7 (in flight) and 8 (acked) are read; another member then settles
	// them and the partition comes back at 100.
	c.read(1, 7, 1)
	c.read(1, 8, 1)
	c.ack(1, 8)
	if !c.read(1, 100, 2) {
		t.Fatal("100 not delivered")
	}
	if ps := c.part(1); len(ps.pending) != 1 || len(ps.acked) != 0 {
		t.Fatalf("stale state below the resume point kept: %+v", ps)
	}
	c.ack(1, 100)
	if got, want := c.toCommit(), map[int]int64{1: 100}; !reflect.DeepEqual(got, want) {
		t.Fatalf("toCommit = %v, want %v", got, want)
	}
}

func TestConfigValidate(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Fatal("empty config accepted")
	}
	if _, err := New(Config{Brokers: []string{"x:1"}, Topic: "t", Group: "g", Start: "middle"}); err == nil {
		t.Fatal("start: middle accepted")
	}
	s, err := New(Config{Brokers: []string{"127.0.0.1:9092"}, Topic: "t", Group: "g"})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Start != StartEarliest || s.cfg.CommitInterval != CommitIntervalDefault {
		t.Fatalf("defaults not applied: %+v", s.cfg)
	}
	if err := s.Close(t.Context()); err != nil { // safe before Connect
		t.Fatal(err)
	}
	if err := s.Close(t.Context()); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := s.Connect(t.Context()); err == nil {
		t.Fatal("Connect after Close succeeded")
	}
}
