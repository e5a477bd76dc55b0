package dispatcher

import (
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/ferrydev/ferry/wire"
)

// RetryPolicy is a function's retry schedule: exponential backoff with
// jitter, bounded by attempts and by the age of the event.
type RetryPolicy struct {
	// MaxAttempts counts the first attempt; at least 1.
	MaxAttempts int
	// InitialInterval is the backoff after the first failure.
	InitialInterval time.Duration
	// MaxInterval caps every delay, a backend's Retry-After included.
	MaxInterval time.Duration
	// Multiplier grows the backoff per failure.
	Multiplier float64
	// MaxAge: no attempt starts later than MaxAge after the event was created.
	MaxAge time.Duration
	// Jitter is the randomization factor (0.5: ±50%). Zero means no jitter.
	Jitter float64
}

// Backoff returns the delay after the n-th failed attempt (n >= 1), from
// cenkalti/backoff's exponential schedule.
func (p RetryPolicy) Backoff(n int) time.Duration {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.InitialInterval,
		RandomizationFactor: p.Jitter,
		Multiplier:          p.Multiplier,
		MaxInterval:         p.MaxInterval,
		MaxElapsedTime:      0, // MaxAge is checked against the event's creation, not this object's.
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	d := p.InitialInterval
	for i := 0; i < n; i++ {
		d = b.NextBackOff()
	}
	return d
}

// Decision is what to do after a failed attempt.
type Decision struct {
	// Retry is true when another attempt should run at At.
	Retry bool
	At    time.Time
	// Code is the final error code when Retry is false: rejected,
	// retries_exhausted, max_age_exceeded or loop_detected.
	Code string
}

// Decide applies the policy after a failed attempt: attempts is the number of
// attempts made so far (this one included), created is when the event was
// created.
func (p RetryPolicy) Decide(c Classified, attempts int, created, now time.Time) Decision {
	switch {
	case c.Code == wire.CodeLoopDetected:
		return Decision{Code: wire.CodeLoopDetected}
	case c.Permanent:
		return Decision{Code: wire.CodeRejected}
	case attempts >= p.MaxAttempts:
		return Decision{Code: wire.CodeRetriesExhausted}
	}
	delay := p.Backoff(attempts)
	if ra := min(c.RetryAfter, p.MaxInterval); ra > delay {
		delay = ra
	}
	at := now.Add(delay)
	if p.MaxAge > 0 && at.Sub(created) > p.MaxAge {
		return Decision{Code: wire.CodeMaxAgeExceeded}
	}
	return Decision{Retry: true, At: at}
}
