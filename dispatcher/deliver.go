package dispatcher

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ferrydev/ferry/wire"
)

// deliverOnce makes one delivery attempt, bounded by the destination's
// timeout.
func deliverOnce(ctx context.Context, dest *Destination, o *wire.Outcome) error {
	if dest.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, dest.Timeout)
		defer cancel()
	}
	return dest.Sink.Deliver(ctx, o)
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
			err := deliverOnce(ctx, dest, o)
			if err == nil {
				d.metrics.delivery(dest.Kind, "delivered")
				break
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			dec := dest.Retry.Decide(Classify(err), attempt, first, time.Now())
			if !dec.Retry {
				d.metrics.delivery(dest.Kind, "failed")
				d.log.Error("outcome delivery failed for good", "id", o.ID, "destination", dest.Name,
					"kind", dest.Kind, "attempts", attempt, "error", err)
				errs = append(errs, fmt.Errorf("%s: %w", dest.Name, err))
				break
			}
			d.metrics.delivery(dest.Kind, "retried")
			d.log.Warn("outcome delivery failed; will retry", "id", o.ID, "destination", dest.Name,
				"kind", dest.Kind, "attempt", attempt, "retry_at", dec.At, "error", err)
			if err := sleepUntil(ctx, dec.At); err != nil {
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
