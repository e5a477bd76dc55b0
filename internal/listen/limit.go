// Package listen provides what Ferry's HTTP listeners need to hold up
// under hostile load and to serve TLS: a listener that caps its open
// connections (shedding the idlest one for a newcomer), a TLS certificate
// that is re-read when its files change, and the process's open-file
// limit.
package listen

import (
	"container/list"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// Limiter is a net.Listener that keeps at most a fixed number of
// connections open. Accept takes a place before it accepts: while every
// place is held, connections wait in the kernel's listen backlog (no file
// descriptor of Ferry's), and the connection that has been idle longest
// (between requests, or connected without a request yet) is closed to
// make room, so a flood of idle connections cannot lock out new clients
// or use up the process's file descriptors. Set ConnState as the
// http.Server's ConnState so the Limiter knows which connections are idle.
type Limiter struct {
	net.Listener
	places chan struct{}
	done   chan struct{}
	close  sync.Once

	mu   sync.Mutex
	idle *list.List                 // *limitedConn, longest idle first
	at   map[net.Conn]*list.Element // idle connections in idle

	open, shed atomic.Int64
}

// Limit wraps ln to keep at most n connections open (at least 1).
func Limit(ln net.Listener, n int) *Limiter {
	return &Limiter{
		Listener: ln,
		places:   make(chan struct{}, max(n, 1)),
		done:     make(chan struct{}),
		idle:     list.New(),
		at:       map[net.Conn]*list.Element{},
	}
}

// Accept waits for a free place, shedding the longest-idle connection
// when there is none, then accepts a connection.
func (l *Limiter) Accept() (net.Conn, error) {
	select {
	case l.places <- struct{}{}:
	default:
		l.shedIdle()
		select {
		case l.places <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.places
		return nil, err
	}
	l.open.Add(1)
	return &limitedConn{Conn: c, l: l}, nil
}

// Close closes the listener; Accept returns net.ErrClosed.
func (l *Limiter) Close() error {
	l.close.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Open is the number of connections open now.
func (l *Limiter) Open() int64 { return l.open.Load() }

// Shed is the number of idle connections closed to make room.
func (l *Limiter) Shed() int64 { return l.shed.Load() }

// ConnState tracks which connections are idle (http.StateNew and
// StateIdle); set it as http.Server.ConnState.
func (l *Limiter) ConnState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.at[c]; ok {
		l.idle.Remove(e)
		delete(l.at, c)
	}
	if s == http.StateNew || s == http.StateIdle {
		l.at[c] = l.idle.PushBack(c)
	}
}

// shedIdle closes the connection idle longest, if any (its place comes
// back when the server sees it closed).
func (l *Limiter) shedIdle() {
	l.mu.Lock()
	e := l.idle.Front()
	var c net.Conn
	if e != nil {
		c = l.idle.Remove(e).(net.Conn)
		delete(l.at, c)
	}
	l.mu.Unlock()
	if c != nil {
		l.shed.Add(1)
		// Not on the accept path: a TLS connection's close sends an alert
		// that a peer that does not read can hold up for seconds.
		go func() { _ = c.Close() }()
	}
}

// limitedConn gives its place back when closed (once).
type limitedConn struct {
	net.Conn
	l      *Limiter
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.mu.Lock()
		if e, ok := c.l.at[c]; ok {
			c.l.idle.Remove(e)
			delete(c.l.at, c)
		}
		c.l.mu.Unlock()
		c.l.open.Add(-1)
		<-c.l.places
	}
	return err
}
