package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/wire"
)

// delivered is the decision after one delivery attempt.
type delivered struct {
	// State is DeliveryDelivered, DeliveryPending (retry at RetryAt) or
	// DeliveryFailed (retries ran out).
	State   async.DeliveryState
	RetryAt time.Time
	// Err is the attempt's error (nil when delivered).
	Err error
	// Local: the attempt failed on a resource of Ferry's own
	// (CodeLocalResource); it is not spent, and RetryAt is after
	// localBackoff.
	Local bool
}

// deliverAttempt makes one delivery attempt of o to dest, bounded by the
// destination's timeout (its only timeout), and decides what comes next on
// the destination's retry policy: attempt is this attempt's number
// (1-based) and first when the first attempt started. It counts and logs
// the result. ok is false when ctx ended during the attempt (a shutdown):
// the attempt does not count and nothing is decided. An attempt that
// failed on a resource of Ferry's own is pending again after a short
// backoff with r.Local set: the caller does not count it. Both the immediate
// path (DeliverNow) and the Outbox deliver with it.
func (d *Dispatcher) deliverAttempt(ctx context.Context, dest *Destination, o *wire.Outcome, attempt int, first time.Time) (r delivered, ok bool) {
	if d.recording {
		var span trace.Span
		ctx, o, span = d.startDelivery(ctx, dest, o, attempt)
		defer func() { endDelivery(span, r, ok) }()
	}
	actx := ctx
	if dest.Timeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, dest.Timeout)
		defer cancel()
	}
	err := dest.Sink.Deliver(actx, o)
	switch {
	case err == nil:
		d.metrics.delivery(dest.Kind, "delivered")
		return delivered{State: async.DeliveryDelivered}, true
	case ctx.Err() != nil:
		return delivered{Err: err}, false
	}
	c := Classify(err)
	if c.Local != "" {
		d.metrics.local(c.Local)
		at := time.Now().Add(localBackoff())
		d.log.Warn("outcome delivery failed on a resource of Ferry's own; retrying without spending an attempt", "id", o.ID,
			"destination", dest.Name, "kind", dest.Kind, "resource", c.Local, "retry_at", at, "error", err)
		return delivered{State: async.DeliveryPending, RetryAt: at, Err: err, Local: true}, true
	}
	dec := dest.Retry.Decide(c, attempt, first, time.Now())
	if dec.Retry {
		d.metrics.delivery(dest.Kind, "retried")
		d.log.Warn("outcome delivery failed; will retry", "id", o.ID, "destination", dest.Name,
			"kind", dest.Kind, "attempt", attempt, "retry_at", dec.At, "error", err)
		return delivered{State: async.DeliveryPending, RetryAt: dec.At, Err: err}, true
	}
	d.metrics.delivery(dest.Kind, "failed")
	d.log.Error("outcome delivery failed for good", "id", o.ID, "destination", dest.Name,
		"kind", dest.Kind, "attempts", attempt, "error", err)
	return delivered{State: async.DeliveryFailed, Err: err}, true
}

// DeliverNow delivers o to every destination and waits: each is retried on
// its own policy until it accepts the outcome or its retries run out. It is
// the poller's path, where the broker keeps the message until the outcome
// is delivered; async tasks use the durable Outbox instead. It returns nil
// when every destination accepted o, ctx's error when ctx ended first, or an
// error naming the destinations that failed for good (counted and logged).
func (d *Dispatcher) DeliverNow(ctx context.Context, dests []Destination, o *wire.Outcome) error {
	var errs []error
	for i := range dests {
		dest := &dests[i]
		first := time.Now()
		for attempt := 1; ; attempt++ {
			r, ok := d.deliverAttempt(ctx, dest, o, attempt, first)
			if !ok {
				return ctx.Err()
			}
			if r.Local {
				attempt-- // not spent
			}
			if r.State == async.DeliveryFailed {
				errs = append(errs, fmt.Errorf("%s: %w", dest.Name, r.Err))
			}
			if r.State != async.DeliveryPending {
				break
			}
			if err := sleepUntil(ctx, r.RetryAt); err != nil {
				return err
			}
		}
	}
	return errors.Join(errs...)
}

// sleepUntil waits until t or until ctx ends.
func sleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
