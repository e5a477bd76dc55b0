package poller

import (
	"context"
	"sync"
)

// gate holds the poller's reader while the trigger is paused: the reader
// waits on it before every Read, so a paused trigger fetches nothing new
// while its source stays connected (the consumer keeps its group
// membership, its position and its lag). The zero value is open.
type gate struct {
	mu   sync.Mutex
	open chan struct{} // closed by resume; nil while not paused
}

// set pauses (true) or resumes (false) and reports whether that changed
// anything.
func (g *gate) set(paused bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if (g.open != nil) == paused {
		return false
	}
	if paused {
		g.open = make(chan struct{})
	} else {
		close(g.open)
		g.open = nil
	}
	return true
}

// closed reports whether the gate is closed (the trigger paused).
func (g *gate) closed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.open != nil
}

// wait returns true once the gate is open (at once when it is), false when
// ctx ended first: a paused trigger never holds up a shutdown.
func (g *gate) wait(ctx context.Context) bool {
	for {
		g.mu.Lock()
		open := g.open
		g.mu.Unlock()
		if open == nil {
			return true
		}
		select {
		case <-open: // resumed; it may have been paused again since: look again
		case <-ctx.Done():
			return false
		}
	}
}

// SetPaused pauses (true) or resumes (false) the trigger; it is safe to
// call at any time, from any goroutine, before Run too (a trigger paused
// before Run connects but never reads).
//
// Pausing stops fetching: Read is not called again until the trigger is
// resumed. The Source is neither closed nor disconnected: the consumer
// stays in its group (no rebalance), keeps its position, and its lag is
// still read (Lag). Messages already handed to the workers (at most two
// batches per worker, and one waiting for room) finish normally and are
// settled; the rest of the last Read, and what a Read waiting at the
// moment of the pause returns, are held, not invoked, until the trigger
// resumes (or handed back for redelivery when Run stops). Pausing while
// the source reconnects lets the reconnect finish and then holds the
// reader. Resuming lifts the hold: the reader goes on from the
// consumer's position.
func (p *Poller) SetPaused(paused bool) {
	if !p.gate.set(paused) {
		return
	}
	if paused {
		p.log.Info("trigger paused: fetching stops; the consumer keeps its position")
	} else {
		p.log.Info("trigger resumed")
	}
}

// Paused reports whether the trigger is paused (SetPaused).
func (p *Poller) Paused() bool { return p.gate.closed() }

// Kind is the trigger's source kind: kafka, rocketmq, rabbitmq or redis.
func (p *Poller) Kind() string { return p.cfg.Kind }

// Lag is the consumer's lag as last read from the broker (the value of
// ferry_trigger_lag, sampled every 10 s, paused or not), and whether it is
// known: false before the first reading, while the broker cannot tell,
// and for sources that do not report a lag.
func (p *Poller) Lag() (int64, bool) {
	if !p.lagKnown.Load() {
		return 0, false
	}
	return p.lagValue.Load(), true
}

// setLag records the lag for Lag.
func (p *Poller) setLag(n int64, known bool) {
	if known {
		p.lagValue.Store(n)
	}
	p.lagKnown.Store(known)
}

// LastError is the source's error that the trigger has not recovered from
// yet (a failed connect, a lost connection, a failed read), "" when there
// is none: a successful connect or read clears it.
func (p *Poller) LastError() string {
	if e := p.lastErr.Load(); e != nil {
		return *e
	}
	return ""
}

// setLastError records err for LastError (nil clears it).
func (p *Poller) setLastError(what string, err error) {
	if err == nil {
		p.lastErr.Store(nil)
		return
	}
	msg := what + ": " + err.Error()
	p.lastErr.Store(&msg)
}
