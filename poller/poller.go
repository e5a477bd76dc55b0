package poller

import (
	"context"
	"errors"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/dispatcher"
)

// Config configures the Poller of one trigger.
type Config struct {
	// Name is the trigger's name (metrics, logs).
	Name string
	// Kind is the broker kind (kafka, rocketmq, rabbitmq, redis): the
	// CloudEvents type is "dev.ferry.<kind>.message".
	Kind   string
	Source Source
	// Dispatcher and Function: the function to invoke, through the
	// dispatcher's middleware and limits.
	Dispatcher *dispatcher.Dispatcher
	Function   *dispatcher.Function
	// BatchSize > 1 sends batches (application/cloudevents-batch+json);
	// BatchWindow is how long a batch waits to fill.
	BatchSize     int
	BatchWindow   time.Duration
	BisectOnError bool
	// Concurrency is the number of workers. With 1, order is kept per
	// scope; above 1, per message key.
	Concurrency int
	Filter      *Filter
	// Retry is the per-message retry policy (defaults to the function's).
	Retry *dispatcher.RetryPolicy
	// OnFailure receives messages that failed for good (defaults to the
	// function's on_failure).
	OnFailure []dispatcher.Destination
	// DrainTimeout bounds how long Run waits for the invocations in flight
	// when its context ends. Defaults to 30s.
	DrainTimeout time.Duration
	Metrics      *Metrics
	Logger       *slog.Logger
}

// Poller runs one trigger: it reads its Source, filters, routes messages to
// workers (by key, so order holds), and settles each message after its
// outcome. Memory stays bounded: each worker holds at most two batches, and
// when the workers are busy (the function at its concurrency limit) the
// reader stops fetching.
type Poller struct {
	cfg     Config
	log     *slog.Logger
	typ     string
	workers []*worker
	metrics *triggerMetrics
	shared  chan *Message // keyless messages, taken by any worker
	seed    maphash.Seed
	tracer  trace.Tracer // records batch spans; nil while spans are off
	up      atomic.Bool  // the source is connected (Connected)

	gate     gate                   // closed while paused (SetPaused)
	lagValue atomic.Int64           // the last lag read (Lag)
	lagKnown atomic.Bool            // lagValue is current
	lastErr  atomic.Pointer[string] // the source's current error (LastError)
}

// Name is the trigger's name.
func (p *Poller) Name() string { return p.cfg.Name }

// Function is the name of the function the trigger invokes.
func (p *Poller) Function() string { return p.cfg.Function.Lane.Function }

// Connected reports whether the trigger's source is connected to its
// broker now (ferry_trigger_connected): false before its first connect,
// while it reconnects and after it stopped.
func (p *Poller) Connected() bool { return p.up.Load() }

// setConnected records the source's state, for Connected and the metric.
func (p *Poller) setConnected(up bool) {
	p.up.Store(up)
	p.metrics.setConnected(up)
}

// New validates cfg and returns a Poller.
func New(cfg Config) (*Poller, error) {
	switch {
	case cfg.Source == nil:
		return nil, errors.New("poller: no source")
	case cfg.Dispatcher == nil || cfg.Function == nil:
		return nil, errors.New("poller: no function")
	}
	cfg.Concurrency = max(cfg.Concurrency, 1)
	cfg.BatchSize = max(cfg.BatchSize, 1)
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	if cfg.Retry == nil {
		cfg.Retry = &cfg.Function.Retry
	}
	if cfg.OnFailure == nil {
		cfg.OnFailure = cfg.Function.OnFailure
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Poller{
		cfg:    cfg,
		log:    cfg.Logger.With("trigger", cfg.Name),
		typ:    "dev.ferry." + cfg.Kind + ".message",
		shared: make(chan *Message, cfg.BatchSize),
		seed:   maphash.MakeSeed(),
		tracer: cfg.Dispatcher.Tracer(),
	}
	p.metrics = cfg.Metrics.trigger(cfg.Name)
	for range cfg.Concurrency {
		p.workers = append(p.workers, &worker{p: p, in: make(chan *Message, cfg.BatchSize)})
	}
	return p, nil
}

// Run consumes until ctx ends, reconnecting with backoff whenever the source
// loses its connection. When ctx ends it stops reading and finishes the
// messages already read (at most two batches per worker), so a graceful
// stop duplicates nothing; after DrainTimeout the invocations still running
// are cancelled and their messages left for redelivery, as are messages
// waiting for a retry. Then the source is closed with its final commit.
func (p *Poller) Run(ctx context.Context) error {
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	var wg sync.WaitGroup
	readerDone := make(chan struct{})
	for _, w := range p.workers {
		wg.Go(func() { w.run(ctx, readerDone, workCtx) })
	}
	if lg, ok := p.cfg.Source.(Lagger); ok {
		wg.Go(func() { p.watchLag(ctx, lg) })
	}

	p.consume(ctx, workCtx)
	close(readerDone)

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(p.cfg.DrainTimeout):
		p.log.Warn("drain timeout: cancelling invocations in flight; their messages will be redelivered")
		cancelWork()
		<-done
	}
	p.handBack()
	closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.cfg.Source.Close(closeCtx); err != nil {
		p.log.Error("closing the source", "error", err)
	}
	p.setConnected(false)
	p.log.Info("trigger stopped")
	return nil
}

// consume connects and reads until ctx ends; the messages of the last read
// are still handed to the workers, until work ends.
func (p *Poller) consume(ctx, work context.Context) {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval, bo.MaxElapsedTime = 200*time.Millisecond, 30*time.Second, 0
	// pause logs a failure and waits out the next backoff; false when ctx
	// ended first.
	pause := func(what string, err error) bool {
		p.setLastError(what, err)
		wait := bo.NextBackOff()
		p.log.Warn(what+"; retrying", "in", wait, "error", err)
		return sleep(ctx, wait) == nil
	}
	connected := false
	for ctx.Err() == nil {
		if !connected {
			if err := p.cfg.Source.Connect(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				p.metrics.sourceError(errConnect)
				p.setConnected(false)
				if !pause("cannot connect", err) {
					return
				}
				continue
			}
			connected = true
			p.setLastError("", nil)
			p.setConnected(true)
			bo.Reset()
			p.log.Info("trigger connected")
		}
		// A paused trigger stays connected and reads nothing.
		if !p.gate.wait(ctx) {
			return
		}
		msgs, err := p.cfg.Source.Read(ctx)
		switch {
		case err == nil:
			p.setLastError("", nil)
		case ctx.Err() != nil, errors.Is(err, ErrEndOfInput):
			return
		case errors.Is(err, ErrRejoin):
			connected = false
			p.log.Debug("rejoining to redeliver nacked messages", "error", err)
			continue
		case errors.Is(err, ErrNotConnected):
			connected = false
			p.metrics.sourceError(errConnectionLost)
			p.setLastError("connection lost", err)
			p.setConnected(false)
			p.log.Warn("connection lost; reconnecting", "error", err)
			continue
		default:
			p.metrics.sourceError(errRead)
			if !pause("read failed", err) {
				return
			}
			continue
		}
		bo.Reset()
		p.metrics.count("consumed", len(msgs))
		for i, m := range msgs {
			// Paused meanwhile: the rest of what Read returned waits for
			// the resume (or goes back to the broker if Run stops first).
			if !p.gate.wait(ctx) || !p.dispatch(work, m) {
				p.nack(msgs[i:])
				return
			}
		}
	}
}

// dispatch filters m and hands it to a worker; false when ctx ended first.
func (p *Poller) dispatch(ctx context.Context, m *Message) bool {
	if !p.cfg.Filter.Match(m) {
		p.metrics.count("filtered", 1)
		p.settle([]*Message{m}, nil)
		return true
	}
	p.metrics.inflight(1)
	ch := p.route(m)
	select {
	case ch <- m:
		return true
	case <-ctx.Done():
		p.metrics.inflight(-1)
		return false
	}
}

// route picks the channel that keeps m's order: one worker for everything
// with concurrency 1; the worker of m's scope and key when m has a key;
// any worker otherwise.
func (p *Poller) route(m *Message) chan *Message {
	switch {
	case len(p.workers) == 1:
		return p.workers[0].in
	case m.Key != "":
		h := maphash.String(p.seed, m.Scope+"\x00"+m.Key)
		return p.workers[h%uint64(len(p.workers))].in
	}
	return p.shared
}

// handBack nacks the messages still in the channels after the drain was cut
// short, so the broker redelivers them (they were never invoked).
func (p *Poller) handBack() {
	var left []*Message
	drain := func(ch chan *Message) {
		for {
			select {
			case m := <-ch:
				left = append(left, m)
			default:
				return
			}
		}
	}
	drain(p.shared)
	for _, w := range p.workers {
		drain(w.in)
	}
	p.metrics.inflight(-len(left))
	p.nack(left)
}

func (p *Poller) nack(msgs []*Message) {
	p.settle(msgs, errHandedBack)
	p.metrics.count("redelivered", len(msgs))
}

var errHandedBack = errors.New("handed back for redelivery")

// settle acks (err nil) or nacks messages, logging a failure to do so (the
// broker then redelivers the message). Acks do not block (AckFunc), so no
// deadline is armed per message.
func (p *Poller) settle(msgs []*Message, err error) {
	ctx := context.Background()
	for _, m := range msgs {
		if aerr := m.Ack(ctx, err); aerr != nil {
			p.log.Warn("cannot settle message; the broker will redeliver it", "id", m.ID, "error", aerr)
		}
	}
}

// watchLag samples the consumer lag at start, then every 10 s; while it
// cannot be read, ferry_trigger_lag has no series for the trigger.
func (p *Poller) watchLag(ctx context.Context, lg Lagger) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		if plg, ok := lg.(PartitionLagger); ok {
			if parts, err := plg.PartitionLag(ctx); err == nil {
				var total int64
				for _, n := range parts {
					total += n
				}
				p.setLag(total, true)
				p.metrics.setPartitionLag(parts)
			} else if ctx.Err() == nil {
				p.setLag(0, false)
				p.metrics.unknownLag()
			}
		} else if n, err := lg.Lag(ctx); err == nil {
			p.setLag(n, true)
			p.metrics.setLag(n)
		} else if ctx.Err() == nil {
			p.setLag(0, false)
			p.metrics.unknownLag()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
