package dispatcher

import (
	"errors"
	"net/http"
	"time"

	"github.com/ferrydev/ferry/wire"
)

// Signal is what one invocation says about its backend's health, for the
// adaptive concurrency limit.
type Signal int

// Signals.
const (
	// SignalNeutral: the result says nothing about load (a 4xx, a 500, a
	// refused invocation).
	SignalNeutral Signal = iota
	// SignalOK: the backend answered well.
	SignalOK
	// SignalOverload: the backend is struggling (429, 503, 504, timeout).
	SignalOverload
)

// SignalOf classifies an invocation's error for Feedback.
func SignalOf(err error) Signal {
	if err == nil {
		return SignalOK
	}
	if errors.Is(err, ErrLoopDetected) {
		return SignalNeutral
	}
	c := Classify(err)
	switch {
	case c.Code == "timeout",
		c.StatusCode == http.StatusTooManyRequests,
		c.StatusCode == http.StatusServiceUnavailable,
		c.StatusCode == http.StatusGatewayTimeout:
		return SignalOverload
	}
	return SignalNeutral
}

// Feedback adjusts lane's adaptive concurrency limit by AIMD, as TCP
// congestion control and Netflix's concurrency-limits do: each good answer
// adds 1/limit (so the limit grows by one per limit's worth of good
// answers), and an overload signal halves it (never below 1), at most once
// per round: only invocations started after the last decrease can
// decrease it again, so a burst of errors from one round counts once. The
// limit never exceeds the function's max_concurrency. start is when the
// invocation started. Lanes without max_concurrency are not adapted.
func (l *Limits) Feedback(lane wire.Lane, start time.Time, sig Signal) {
	if sig == SignalNeutral {
		return
	}
	l.mu.Lock()
	s := l.lanes[lane]
	if s == nil || s.max <= 0 {
		l.mu.Unlock()
		return
	}
	if s.limit == 0 {
		s.limit = float64(s.max)
	}
	before := s.capacity()
	switch sig {
	case SignalOverload:
		if start.After(s.decreased) {
			s.limit = max(1, s.limit/2)
			s.decreased = l.now()
		}
	case SignalOK:
		s.limit = min(float64(s.max), s.limit+1/s.limit)
	}
	l.noteLane(lane)
	if s.capacity() > before {
		l.broadcast()
	}
	l.mu.Unlock()
}

// Capacity returns lane's concurrency limit now: max_concurrency, or less
// while the adaptive limit holds it back (0: unlimited).
func (l *Limits) Capacity(lane wire.Lane) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s := l.lanes[lane]; s != nil {
		return s.capacity()
	}
	return 0
}
