// Package sharedtest is the contract of the flow-control state that nodes
// share, written once and run against every implementation: the token
// buckets of the rates (dispatcher.RateStore) and the loop guard's trace
// counts (dispatcher.TraceCounter), in memory (package dispatcher's tests)
// and on Redis (package redisstore's). An implementation in memory is one
// node; its "other nodes" are the same value.
package sharedtest

import (
	"sync/atomic"
	"time"
)

// Clock is the fake time a rate store under test reads: real time moved
// forward by Advance. A store in memory takes its time from Now; one on
// Redis shifts Redis's clock by Offset.
type Clock struct{ off atomic.Int64 }

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// Offset is how far the clock is ahead of real time.
func (c *Clock) Offset() time.Duration { return time.Duration(c.off.Load()) }

// Now is real time plus Offset.
func (c *Clock) Now() time.Time { return time.Now().Add(c.Offset()) }
