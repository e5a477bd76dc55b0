// Package redisstream is Ferry's Redis Streams source: it reads one stream
// through a consumer group (XREADGROUP), settles each entry with XACK after
// its outcome, and claims the entries of dead consumers with XAUTOCLAIM.
//
// Delivery is at least once. An entry is pending in the group from the
// moment it is read until it is acknowledged; a Source
//   - first re-reads its own consumer's pending entries (XREADGROUP id "0"),
//     so a restart with the same Consumer name resumes them;
//   - then reads new entries (XREADGROUP ">");
//   - every ClaimInterval claims entries idle longer than ClaimIdle in any
//     consumer's pending list (XAUTOCLAIM) and returns them from Read too;
//   - keeps its own in-flight entries from looking idle (XCLAIM JUSTID every
//     ClaimIdle/3), so slow functions and Ferry's own retries are not taken
//     over by other consumers;
//   - never deletes a consumer (XGROUP DELCONSUMER would drop its pending
//     entries).
//
// A nack (Ack with a non-nil error) leaves the entry pending and makes the
// next Read re-read this consumer's pending entries from id "0" (skipping
// those still in flight), so the entry is redelivered to this process
// within one Block, not only to whoever claims it after ClaimIdle. Each
// nack costs one pass over this consumer's pending list.
//
// Acks are queued and XACKed in batches by a committer goroutine; Close
// flushes them. A failed command (Redis restarted, connection cut) makes
// Read return an error wrapping poller.ErrNotConnected; go-redis's own
// silent retries are off so that no XREADGROUP reply is lost unseen, and
// Connect pings, recreates the group if the stream vanished and re-reads
// this consumer's pending entries. Entries survive a Redis restart only if
// Redis persists them (appendonly or RDB snapshots).
package redisstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ferrydev/ferry/poller"
)

var (
	_ poller.Source = (*Source)(nil)
	_ poller.Lagger = (*Source)(nil)
)

// ErrClosed is returned by Connect, Read and Ack after Close.
var ErrClosed = errors.New("redisstream: source closed")

// opTimeout bounds every non-blocking command.
const opTimeout = 5 * time.Second

// Source reads one Redis stream through a consumer group. It implements
// poller.Source and poller.Lagger. Read must not be called concurrently
// with itself; Ack closures may be called from any goroutine.
type Source struct {
	cfg    Config
	opt    *redis.Options
	log    *slog.Logger
	scope  string // "redis:<stream>"
	source string // "redis://<host:port>/<stream>"

	readMu sync.Mutex // serialises Read
	// flushMu serialises XACK flushes (committer and Close).
	flushMu sync.Mutex

	mu        sync.Mutex
	client    *redis.Client
	connected bool
	everUp    bool // connected at least once: a vanished group is recreated at "0"
	closed    bool
	// Own pending entries are re-read from rescanFrom while rescan is set
	// (after Connect and after a nack); rescanGen changes on every nack so a
	// scan in progress starts over from "0".
	rescan     bool
	rescanFrom string
	rescanGen  uint64
	// XAUTOCLAIM cursor and when the next claim is due.
	claimFrom string
	nextClaim time.Time
	// inflight: entries returned by Read whose XACK has not succeeded yet
	// (value: when the entry was last delivered or touched). Re-reads and
	// claims skip them.
	inflight map[string]time.Time
	// settled: entries XACKed while a re-read or claim was in progress (its
	// reply may still list them); cleared when no scan is in progress.
	scanning int
	settled  map[string]struct{}
	// toAck: acknowledged entries waiting for the committer's XACK.
	toAck []string

	kick chan struct{} // wakes the committer
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the committer has stopped
}

// New validates cfg, applies defaults and returns a Source that is not
// connected yet.
func New(cfg Config) (*Source, error) {
	cfg = cfg.withDefaults()
	opt, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	// Deadlines of the caller's context bound every command (go-redis PR
	// #2243); the socket read timeout must outlast XREADGROUP BLOCK, which
	// Redis may re-arm when another consumer takes the entry it woke for
	// (go-redis #2963, redis #12998).
	opt.ContextTimeoutEnabled = true
	if min := cfg.Block + 3*time.Second; opt.ReadTimeout < min {
		opt.ReadTimeout = min
	}
	// No silent command retries inside go-redis (unless the URL asks for
	// max_retries): a retried XREADGROUP ">" whose first reply was lost
	// would leave entries pending unseen until a claim. Read reports
	// ErrNotConnected instead, and Connect re-reads the pending entries.
	if opt.MaxRetries == 0 {
		opt.MaxRetries = -1
	}
	// One connection is held by the blocking XREADGROUP; the committer, the
	// in-flight toucher and Lag need their own.
	if opt.PoolSize < 4 {
		opt.PoolSize = 4
	}
	s := &Source{
		cfg:        cfg,
		opt:        opt,
		log:        cfg.Logger.With("source", "redis", "stream", cfg.Stream, "group", cfg.Group, "consumer", cfg.Consumer),
		scope:      "redis:" + cfg.Stream,
		source:     "redis://" + opt.Addr + "/" + cfg.Stream,
		rescanFrom: "0",
		claimFrom:  "0-0",
		inflight:   make(map[string]time.Time),
		settled:    make(map[string]struct{}),
		kick:       make(chan struct{}, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	return s, nil
}

// Config returns the configuration in use, defaults applied.
func (s *Source) Config() Config { return s.cfg }

// Connect pings Redis and creates the consumer group (XGROUP CREATE
// MKSTREAM at "0" or "$"; an existing group is kept). The first Connect
// creates the client and starts the committer; later calls, after Read
// returned ErrNotConnected, reuse them. After every Connect, Read first
// re-reads this consumer's own pending entries.
func (s *Source) Connect(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.client == nil {
		s.client = redis.NewClient(s.opt)
		go s.commitLoop(s.client)
	}
	client, everUp := s.client, s.everUp
	s.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := client.Ping(cctx).Err(); err != nil {
		return fmt.Errorf("redisstream: ping %s: %w: %w", s.opt.Addr, poller.ErrNotConnected, err)
	}
	start := "0"
	if s.cfg.Start == StartLatest && !everUp {
		start = "$"
	}
	err := client.XGroupCreateMkStream(cctx, s.cfg.Stream, s.cfg.Group, start).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("redisstream: create group %s on %s: %w", s.cfg.Group, s.cfg.Stream, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.connected, s.everUp = true, true
	s.rescan, s.rescanFrom = true, "0"
	s.rescanGen++
	s.claimFrom, s.nextClaim = "0-0", time.Time{}
	return nil
}

// Read returns the next entries, in stream order within each call: first
// this consumer's own pending entries (after Connect or a nack), then
// entries claimed from dead consumers when a claim is due, else new entries.
// It blocks until at least one entry is available or ctx ends. A failed
// command marks the Source disconnected and returns an error wrapping
// poller.ErrNotConnected.
func (s *Source) Read(ctx context.Context) ([]*poller.Message, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s.mu.Lock()
		closed, connected, client := s.closed, s.connected, s.client
		rescan, from, gen := s.rescan, s.rescanFrom, s.rescanGen
		claimIn := time.Until(s.nextClaim)
		claimFrom := s.claimFrom
		s.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case !connected:
			return nil, fmt.Errorf("redisstream: read %s: %w", s.cfg.Stream, poller.ErrNotConnected)
		}

		var msgs []*poller.Message
		var err error
		switch {
		case rescan:
			msgs, err = s.readOwnPending(ctx, client, from, gen)
		case claimIn <= 0:
			msgs, err = s.claim(ctx, client, claimFrom)
		default:
			msgs, err = s.readNew(ctx, client, min(s.cfg.Block, max(claimIn, time.Millisecond)))
		}
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		if len(msgs) > 0 {
			return msgs, nil
		}
	}
}

// readNew reads entries never delivered to the group (XREADGROUP ">").
func (s *Source) readNew(ctx context.Context, client *redis.Client, block time.Duration) ([]*poller.Message, error) {
	// The socket deadline follows ctx (ContextTimeoutEnabled): end the
	// BLOCK before the caller's deadline (a read cut by the deadline costs
	// the connection), and give the read room beyond its BLOCK.
	if dl, ok := ctx.Deadline(); ok {
		// Redis times blocked clients out on its own clock (up to ~100ms
		// late at the default hz 10): keep a margin.
		left := time.Until(dl) - 250*time.Millisecond
		if left < time.Millisecond {
			<-ctx.Done()
			return nil, nil
		}
		block = min(block, left)
	}
	cctx, cancel := context.WithTimeout(ctx, block+opTimeout)
	defer cancel()
	streams, err := client.XReadGroup(cctx, &redis.XReadGroupArgs{
		Group: s.cfg.Group, Consumer: s.cfg.Consumer,
		Streams: []string{s.cfg.Stream, ">"},
		Count:   int64(s.cfg.Count), Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("XREADGROUP %s >: %w", s.cfg.Stream, err)
	}
	return s.deliver(entriesOf(streams), false), nil
}

// readOwnPending re-reads this consumer's pending entries from id from
// (XREADGROUP id, no BLOCK). An empty reply ends the re-read.
func (s *Source) readOwnPending(ctx context.Context, client *redis.Client, from string, gen uint64) ([]*poller.Message, error) {
	s.beginScan()
	defer s.endScan()
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	streams, err := client.XReadGroup(cctx, &redis.XReadGroupArgs{
		Group: s.cfg.Group, Consumer: s.cfg.Consumer,
		Streams: []string{s.cfg.Stream, from},
		Count:   int64(s.cfg.Count), Block: -1,
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("XREADGROUP %s %s: %w", s.cfg.Stream, from, err)
	}
	entries := entriesOf(streams)
	s.mu.Lock()
	if s.rescanGen == gen { // no nack meanwhile: continue after this page
		if len(entries) == 0 {
			s.rescan = false
		} else {
			s.rescanFrom = entries[len(entries)-1].ID
		}
	}
	s.mu.Unlock()
	return s.deliver(entries, true), nil
}

// claim takes over entries idle longer than ClaimIdle in any consumer's
// pending list (XAUTOCLAIM), one page per call.
func (s *Source) claim(ctx context.Context, client *redis.Client, from string) ([]*poller.Message, error) {
	s.beginScan()
	defer s.endScan()
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	entries, next, err := client.XAutoClaim(cctx, &redis.XAutoClaimArgs{
		Stream: s.cfg.Stream, Group: s.cfg.Group, Consumer: s.cfg.Consumer,
		MinIdle: s.cfg.ClaimIdle, Start: from, Count: int64(s.cfg.Count),
	}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("XAUTOCLAIM %s %s: %w", s.cfg.Stream, from, err)
	}
	s.mu.Lock()
	if next == "" || next == "0-0" { // scan complete: wait for the next interval
		s.claimFrom, s.nextClaim = "0-0", time.Now().Add(s.cfg.ClaimInterval)
	} else {
		s.claimFrom = next
	}
	s.mu.Unlock()
	msgs := s.deliver(entries, true)
	if len(msgs) > 0 {
		s.log.Info("claimed idle entries", "count", len(msgs), "min_idle", s.cfg.ClaimIdle)
	}
	return msgs, nil
}

// fail turns a failed command into Read's error: the caller's own context
// error as is, anything else marks the Source disconnected.
func (s *Source) fail(ctx context.Context, err error) error {
	// The caller's deadline also bounds the socket (ContextTimeoutEnabled),
	// so a read cut by it fails with an i/o timeout: report the context.
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	s.mu.Lock()
	closed := s.closed
	s.connected = false
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return fmt.Errorf("redisstream: %w: %w", poller.ErrNotConnected, err)
}

// Close stops the committer, XACKs every entry acknowledged so far (a
// graceful stop causes no duplicates) and closes the client. Entries read
// but not acknowledged stay pending: this consumer re-reads them when it
// comes back under the same name, or another consumer claims them after
// ClaimIdle. Close is idempotent and safe before Connect.
func (s *Source) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed, s.connected = true, false
	client := s.client
	s.mu.Unlock()
	close(s.stop)
	if client == nil {
		return nil
	}
	var errs []error
	select {
	case <-s.done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("redisstream: close: waiting for the committer: %w", ctx.Err()))
	}
	if err := s.flush(ctx, client); err != nil {
		errs = append(errs, fmt.Errorf("redisstream: close: final XACK: %w", err))
	}
	if err := client.Close(); err != nil {
		errs = append(errs, fmt.Errorf("redisstream: close client: %w", err))
	}
	return errors.Join(errs...)
}

// Lag is how many entries the group has not settled yet: entries not yet
// delivered to the group (XINFO GROUPS lag, Redis 7) plus entries delivered
// but not acknowledged (the group's pending count), like a Kafka lag
// measured from the committed offset.
func (s *Source) Lag(ctx context.Context) (int64, error) {
	s.mu.Lock()
	client := s.client
	s.mu.Unlock()
	if client == nil {
		return 0, fmt.Errorf("redisstream: lag: %w", poller.ErrNotConnected)
	}
	cctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	groups, err := client.XInfoGroups(cctx, s.cfg.Stream).Result()
	if err != nil {
		return 0, fmt.Errorf("redisstream: XINFO GROUPS %s: %w", s.cfg.Stream, err)
	}
	for _, g := range groups {
		if g.Name != s.cfg.Group {
			continue
		}
		lag := g.Lag
		if lag < 0 { // unknown after deletions: count the entries after last-delivered-id
			if lag, err = s.countAfter(cctx, client, g.LastDeliveredID); err != nil {
				return 0, err
			}
		}
		return lag + g.Pending, nil
	}
	return 0, fmt.Errorf("redisstream: lag: group %s not found on %s", s.cfg.Group, s.cfg.Stream)
}

// countAfter counts the entries after id (XRANGE pages of 1000).
func (s *Source) countAfter(ctx context.Context, client *redis.Client, id string) (int64, error) {
	var n int64
	for {
		page, err := client.XRangeN(ctx, s.cfg.Stream, "("+id, "+", 1000).Result()
		if err != nil {
			return 0, fmt.Errorf("redisstream: XRANGE %s: %w", s.cfg.Stream, err)
		}
		n += int64(len(page))
		if len(page) < 1000 {
			return n, nil
		}
		id = page[len(page)-1].ID
	}
}

// entriesOf flattens an XREADGROUP reply on one stream.
func entriesOf(streams []redis.XStream) []redis.XMessage {
	var out []redis.XMessage
	for _, st := range streams {
		out = append(out, st.Messages...)
	}
	return out
}
