// Package kafka is Ferry's Kafka trigger source, built on
// github.com/segmentio/kafka-go's consumer-group Reader.
//
// Delivery: messages are fetched with FetchMessage (never ReadMessage, which
// commits before processing: kafka-go #1179). Each message's Ack marks its
// offset settled in a per-partition checkpoint; a committer goroutine commits,
// every CommitInterval, the highest offset settled contiguously per partition
// (never past an unsettled message), and Close commits once more before
// leaving the group (the reader's own close-commit is not relied on: kafka-go
// #711). A nack (Ack with an error) leaves the offset unsettled and makes the
// next Read commit what is settled, close the reader and report
// poller.ErrNotConnected, so that the poller loop's Connect joins again and
// the group fetches from the committed offset: the nacked message comes
// back, and so do the unsettled messages after it; messages already acked
// are recognised and not delivered again. Read never connects by itself:
// the poller loop owns reconnects (poller.Source).
//
// Connection loss: kafka-go retries internally and FetchMessage just waits.
// Read therefore returns an error wrapping poller.ErrNotConnected when the
// reader reports a non-retriable error, or when no message came for 2s while
// kafka-go logged errors and a fresh connection to the brokers fails (a real
// dial: kafka-go's Transport answers metadata from its cache). Connect then
// replaces the reader; it fails until a broker answers again.
//
// Lag comes from the brokers (the group's committed offsets against the
// partitions' end offsets), not from Reader.Stats, whose lag covers only the
// partition of the last fetched message in group mode.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/ferrydev/ferry/poller"
)

var (
	_ poller.Source = (*Source)(nil)
	_ poller.Lagger = (*Source)(nil)
)

// ErrClosed is returned by Connect, Read and Ack after Close.
var ErrClosed = errors.New("kafka source closed")

// Timeouts bounding every call to the brokers.
const (
	dialTimeout   = 5 * time.Second
	commitTimeout = 5 * time.Second
	// idleProbe is how long Read waits for a message before it checks, when
	// kafka-go reported errors meanwhile, whether the brokers still answer.
	idleProbe    = 2 * time.Second
	probeTimeout = 3 * time.Second
	// drainWait bounds how long Read, having a message, keeps taking the
	// ones the reader has already fetched; maxRead caps the run.
	drainWait = time.Millisecond
	maxRead   = 256
	// retireTimeout bounds the best-effort commit and close of a reader
	// being replaced after a connection loss.
	retireTimeout = 5 * time.Second
)

// Source reads one Kafka topic as a member of a consumer group. It
// implements poller.Source and poller.Lagger. Create it with New.
type Source struct {
	cfg    Config
	log    *slog.Logger
	uri    string
	client *kafkago.Client
	tr     *kafkago.Transport

	// errs counts errors kafka-go logged since the last fetched message.
	errs atomic.Int64

	// scopes caches each partition's message scope; only Read (one
	// goroutine) uses it.
	scopes map[int]string

	// deferred is an error of reader deferredFrom that ended a drain; only
	// Read (one goroutine) uses them.
	deferred     error
	deferredFrom *kafkago.Reader

	// commitMu serialises commits (committer, rewind, Close).
	commitMu sync.Mutex

	mu      sync.Mutex
	reader  *kafkago.Reader
	epoch   uint64 // incremented for every new reader
	rewind  bool   // a message of the current epoch was nacked
	closed  bool
	cp      *checkpoint
	stop    chan struct{} // closes the committer
	running bool          // committer started
	wg      sync.WaitGroup
}

// New validates cfg, applies defaults and returns a Source that is not
// connected yet.
func New(cfg Config) (*Source, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tr := &kafkago.Transport{DialTimeout: dialTimeout, ClientID: "ferry", IdleTimeout: 30 * time.Second}
	return &Source{
		cfg:    cfg,
		log:    cfg.Logger.With("source", "kafka", "topic", cfg.Topic, "group", cfg.Group),
		uri:    "kafka://" + cfg.Brokers[0] + "/" + cfg.Topic,
		tr:     tr,
		client: &kafkago.Client{Addr: kafkago.TCP(cfg.Brokers...), Timeout: 10 * time.Second, Transport: tr},
		cp:     newCheckpoint(),
		stop:   make(chan struct{}),
	}, nil
}

// Connect checks that the topic exists, and joins the group with a new
// reader, replacing (after a best-effort commit) any previous one. With
// Start "latest" it first commits the newest offsets for every partition
// the group has no offset for (kafka-go #904, #1319).
func (s *Source) Connect(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	old := s.reader
	s.reader = nil
	s.mu.Unlock()
	if old != nil {
		s.retire(ctx, old)
	}

	parts, err := s.partitions(ctx)
	if err != nil {
		return fmt.Errorf("kafka: connect to %v: %w", s.cfg.Brokers, err)
	}
	if s.cfg.Start == StartLatest {
		if err := s.pinLatest(ctx, parts); err != nil {
			return fmt.Errorf("kafka: connect: %w", err)
		}
	}

	r := kafkago.NewReader(s.readerConfig())
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		s.mu.Unlock()
		s.closeReader(ctx, r) // never fetched: nothing to commit
		s.mu.Lock()
		return ErrClosed
	}
	s.reader = r
	s.epoch++
	s.rewind = false
	s.errs.Store(0)
	if !s.running {
		s.running = true
		s.wg.Add(1)
		go s.committer()
	}
	return nil
}

// readerConfig sets the reader's options deliberately: small queue so memory
// stays bounded, short MaxWait so fetches return, synchronous commits that
// the committer batches, errors counted to notice a broker loss.
func (s *Source) readerConfig() kafkago.ReaderConfig {
	start := kafkago.FirstOffset
	if s.cfg.Start == StartLatest {
		start = kafkago.LastOffset
	}
	rc := kafkago.ReaderConfig{
		Brokers:          s.cfg.Brokers,
		GroupID:          s.cfg.Group,
		Topic:            s.cfg.Topic,
		Dialer:           &kafkago.Dialer{Timeout: dialTimeout, DualStack: true, ClientID: "ferry"},
		QueueCapacity:    256, // fetched messages waiting for Read: a few 100 KiB
		MinBytes:         1,
		MaxBytes:         1 << 20,
		MaxWait:          500 * time.Millisecond,
		ReadBatchTimeout: 5 * time.Second,
		CommitInterval:   0, // synchronous: the committer batches commits itself
		StartOffset:      start,
		JoinGroupBackoff: time.Second,
		// Short enough that a member lost with a broker restart is replaced
		// within seconds (the group waits for it up to these timeouts).
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		ReadBackoffMin:    100 * time.Millisecond,
		ReadBackoffMax:    time.Second,
		// Detect partitions added to the topic.
		WatchPartitionChanges: true,
		ErrorLogger: kafkago.LoggerFunc(func(format string, args ...any) {
			s.errs.Add(1)
			s.log.Warn("kafka-go: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
		}),
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		rc.Logger = kafkago.LoggerFunc(func(format string, args ...any) {
			s.log.Debug("kafka-go: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
		})
	}
	return rc
}

// Read blocks until a message is available and returns it. It returns an
// error wrapping poller.ErrNotConnected when the reader fails, when kafka-go
// reports errors while no message arrives and the brokers do not answer a
// metadata request, or after a nack, having committed what is settled and
// closed the reader (see the package doc); the caller then calls Connect,
// which joins the group again.
func (s *Source) Read(ctx context.Context) ([]*poller.Message, error) {
	for {
		s.mu.Lock()
		r, closed, rewind, epoch := s.reader, s.closed, s.rewind, s.epoch
		s.mu.Unlock()
		switch {
		case closed:
			return nil, ErrClosed
		case r == nil:
			return nil, fmt.Errorf("kafka: read %s: %w", s.cfg.Topic, poller.ErrNotConnected)
		case rewind:
			return nil, s.restart(ctx, r)
		}

		m, err := s.fetch(ctx, r)
		switch {
		case err == nil:
			s.errs.Store(0)
			if msgs := s.track(s.drain(ctx, r, m), epoch); len(msgs) > 0 {
				return msgs, nil
			}
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			if s.errs.Load() == 0 {
				continue
			}
			if _, perr := s.partitions(ctx); perr != nil {
				s.drop(r)
				return nil, fmt.Errorf("kafka: read %s: brokers unreachable: %w: %w", s.cfg.Topic, poller.ErrNotConnected, perr)
			}
			s.errs.Store(0)
		case errors.Is(err, io.EOF):
			// The reader was closed under us (Close, or a concurrent Connect).
			continue
		case isTemporary(err):
			// kafka-go retries these itself (coordinator moving or loading,
			// leader election); a lasting outage is caught by the probe.
			s.errs.Add(1)
			s.log.Warn("kafka: transient fetch error; kafka-go retries", "err", err)
		default:
			s.drop(r)
			return nil, fmt.Errorf("kafka: read %s: %w: %w", s.cfg.Topic, poller.ErrNotConnected, err)
		}
	}
}

// isTemporary reports whether err is a Kafka error code that kafka-go
// classifies as retriable.
func isTemporary(err error) bool {
	var kerr kafkago.Error
	return errors.As(err, &kerr) && kerr.Temporary()
}

// drop forgets reader r (if still current) so that Read reports
// ErrNotConnected until Connect replaces it; Connect retires it.
func (s *Source) drop(r *kafkago.Reader) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reader == r {
		s.reader = nil
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), retireTimeout)
			defer cancel()
			s.closeReader(ctx, r)
		}()
	}
}

// restart ends reader r after a nack: it commits what is settled, forgets
// r and closes it (leaving the group), and returns the error wrapping
// poller.ErrNotConnected that makes the caller Connect again, so every
// partition is fetched from its committed offset.
func (s *Source) restart(ctx context.Context, r *kafkago.Reader) error {
	s.log.Debug("nack: closing the reader; the next Connect re-reads from the committed offsets")
	if err := s.flush(ctx, r); err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	s.mu.Lock()
	if s.reader == r {
		s.reader = nil
	}
	s.mu.Unlock()
	rctx, cancel := context.WithTimeout(ctx, retireTimeout)
	defer cancel()
	s.closeReader(rctx, r)
	return fmt.Errorf("kafka: re-read %s from the committed offsets after a nack: %w", s.cfg.Topic, poller.ErrRejoin)
}

// retire commits what is settled through old and closes it, both bounded.
func (s *Source) retire(ctx context.Context, old *kafkago.Reader) {
	rctx, cancel := context.WithTimeout(ctx, retireTimeout)
	defer cancel()
	_ = s.flush(rctx, old) // logged by flush; the next reader commits it
	s.closeReader(rctx, old)
}

// closeReader closes r, waiting at most until ctx ends (kafka-go's Close
// may wait for a group leave to a dead broker); it then finishes in the
// background, still tracked by s.wg.
func (s *Source) closeReader(ctx context.Context, r *kafkago.Reader) {
	done := make(chan struct{})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(done)
		if err := r.Close(); err != nil {
			s.log.Warn("closing kafka reader", "err", err)
		}
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// fetch waits up to idleProbe for r's next message; an error that ended
// the previous drain is returned first (kafka-go reports it only once).
func (s *Source) fetch(ctx context.Context, r *kafkago.Reader) (kafkago.Message, error) {
	if s.deferred != nil && s.deferredFrom == r {
		err := s.deferred
		s.deferred, s.deferredFrom = nil, nil
		return kafkago.Message{}, err
	}
	s.deferred, s.deferredFrom = nil, nil
	fctx, cancel := context.WithTimeout(ctx, idleProbe)
	defer cancel()
	return r.FetchMessage(fctx)
}

// drain returns first and the messages the reader already holds after it,
// up to maxRead, so one Read hands over a run of messages. It fetches under
// one short deadline (drainWait: kafka-go has no non-blocking fetch), so a
// run ends at maxRead or when the reader's queue stays empty that long.
func (s *Source) drain(ctx context.Context, r *kafkago.Reader, first kafkago.Message) []kafkago.Message {
	ms := []kafkago.Message{first}
	dctx, cancel := context.WithTimeout(ctx, drainWait)
	defer cancel()
	for len(ms) < maxRead {
		m, err := r.FetchMessage(dctx)
		if err != nil {
			if !errors.Is(err, dctx.Err()) {
				// The reader's error: the next Read handles it.
				s.deferred, s.deferredFrom = err, r
			}
			break
		}
		ms = append(ms, m)
	}
	return ms
}

// track registers fetched messages and converts them, skipping those
// already settled (a re-read).
func (s *Source) track(ms []kafkago.Message, epoch uint64) []*poller.Message {
	deliver := make([]bool, len(ms))
	s.mu.Lock()
	for i, m := range ms {
		deliver[i] = s.cp.read(m.Partition, m.Offset, epoch)
	}
	s.mu.Unlock()
	out := make([]*poller.Message, 0, len(ms))
	for i, m := range ms {
		if deliver[i] {
			out = append(out, s.message(m, epoch))
		}
	}
	return out
}

// message converts m and gives it the Ack that settles its offset.
func (s *Source) message(m kafkago.Message, epoch uint64) *poller.Message {
	msg := s.convert(m)
	var once atomic.Bool
	part, off := m.Partition, m.Offset
	msg.Ack = func(_ context.Context, err error) error {
		if !once.CompareAndSwap(false, true) {
			return fmt.Errorf("kafka: %s acked twice", msg.ID)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return fmt.Errorf("kafka: ack %s: %w (it will be redelivered)", msg.ID, ErrClosed)
		}
		if err == nil {
			s.cp.ack(part, off)
			return nil
		}
		// Nack: leave the offset unsettled. A nack from an earlier reader
		// needs nothing more: that reader's replacement reads from the
		// committed offset, which cannot be past this message.
		if epoch == s.epoch {
			s.rewind = true
		}
		return nil
	}
	return msg
}

// convert maps a kafka-go message to a poller message (without Ack).
func (s *Source) convert(m kafkago.Message) *poller.Message {
	scope := s.scope(m.Topic, m.Partition)
	id := make([]byte, 0, len(scope)+21)
	id = append(append(id, scope...), '/')
	msg := &poller.Message{
		ID:      string(strconv.AppendInt(id, m.Offset, 10)),
		Scope:   scope,
		Key:     string(m.Key),
		Source:  s.uri,
		Payload: m.Value,
		Time:    m.Time,
	}
	if len(m.Headers) > 0 {
		msg.Headers = make(map[string]string, len(m.Headers))
	}
	for _, h := range m.Headers {
		// A repeated header keeps its last value.
		msg.Headers[h.Key] = string(h.Value)
		if strings.EqualFold(h.Key, "content-type") {
			msg.ContentType = string(h.Value)
		}
	}
	if msg.Time.IsZero() {
		msg.Time = time.Now()
	}
	return msg
}

// scope returns "kafka:<topic>/<partition>", made once per partition (only
// Read's goroutine calls it).
func (s *Source) scope(topic string, partition int) string {
	if sc, ok := s.scopes[partition]; ok && topic == s.cfg.Topic {
		return sc
	}
	sc := "kafka:" + topic + "/" + strconv.Itoa(partition)
	if topic == s.cfg.Topic {
		if s.scopes == nil {
			s.scopes = map[int]string{}
		}
		s.scopes[partition] = sc
	}
	return sc
}

// Close stops the committer, commits every offset settled contiguously,
// then leaves the group and releases the connections. Messages read but not
// acked are redelivered (to this group) later. Close is idempotent and safe
// before Connect; acks after Close return an error wrapping ErrClosed.
func (s *Source) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	r := s.reader
	s.reader = nil
	close(s.stop)
	s.mu.Unlock()

	var err error
	if r != nil {
		if ferr := s.flush(ctx, r); ferr != nil {
			err = fmt.Errorf("kafka: final commit: %w", ferr)
		}
		s.closeReader(ctx, r)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("kafka: close: %w", ctx.Err()))
	}
	s.tr.CloseIdleConnections()
	return err
}
