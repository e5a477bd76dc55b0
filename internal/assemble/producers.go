package assemble

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Producers holds the long-lived broker clients of the MQ destinations:
// one per broker connection, shared by every destination that uses it
// (a producer is never made per message, nor per destination).
type Producers struct {
	byConn map[string]io.Closer // by kind and connection key
	opened []opened             // in opening order
}

// NewProducers returns an empty set of producers.
func NewProducers() *Producers {
	return &Producers{byConn: map[string]io.Closer{}}
}

// shared returns the producer of kind for the connection named conn,
// opening it with open the first time.
func shared[P io.Closer](p *Producers, kind, conn string, open func() (P, error)) (P, error) {
	key := kind + "\x00" + conn
	if c, ok := p.byConn[key]; ok {
		return c.(P), nil
	}
	c, err := open()
	if err != nil {
		var zero P
		return zero, err
	}
	p.byConn[key] = c
	p.opened = append(p.opened, opened{kind, c})
	return c, nil
}

// Open is how many producers are open.
func (p *Producers) Open() int { return len(p.opened) }

// addrKey names a set of broker addresses independently of their order.
func addrKey(addrs []string) string {
	s := slices.Clone(addrs)
	slices.Sort(s)
	return strings.Join(s, ",")
}

// Close closes every producer (after the outbox and the triggers stopped).
func (p *Producers) Close() error {
	var errs []error
	for _, c := range p.opened {
		if err := c.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s producer: %w", c.kind, err))
		}
	}
	p.opened = nil
	clear(p.byConn)
	return errors.Join(errs...)
}

// opened is a producer to close, with its kind for the error message.
type opened struct {
	kind string
	io.Closer
}
