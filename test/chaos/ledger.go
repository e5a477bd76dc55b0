// Package chaos runs the fault matrix of shared/reliability.md against
// real brokers and real `ferry serve` processes and counts, for every row,
// as reliability.md says: every produced message or submitted task carries
// a unique sequence number, and three logs (accepted, seen by the backend
// with attempt numbers, delivered = a successful invocation) give N, lost,
// duplicated and unexpected. `make chaos` runs every row (TestChaos, with
// FERRY_CHAOS=1) and writes the table to docs/reliability.md; `make test`
// runs one fast row (TestChaosSmoke).
package chaos

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Ledger holds the three logs of one row.
type Ledger struct {
	mu        sync.Mutex
	accepted  map[int]bool
	attempts  map[int]int // invocations seen by the backend, per seq
	delivered map[int]int // successful invocations, per seq
	last      time.Time   // the last successful invocation
}

// NewLedger returns an empty Ledger.
func NewLedger() *Ledger {
	return &Ledger{accepted: map[int]bool{}, attempts: map[int]int{}, delivered: map[int]int{}}
}

// Accept records seq as accepted (a 202, or a message the broker confirmed).
func (l *Ledger) Accept(seq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.accepted[seq] = true
}

// Seen records an invocation of seq and returns its attempt number (1 for
// the first).
func (l *Ledger) Seen(seq int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempts[seq]++
	return l.attempts[seq]
}

// Deliver records a successful invocation of seq.
func (l *Ledger) Deliver(seq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.delivered[seq]++
	l.last = time.Now()
}

// Delivered is how many distinct accepted seqs were delivered, and how
// many deliveries there were in all.
func (l *Ledger) Delivered() (distinct, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for seq, n := range l.delivered {
		if l.accepted[seq] {
			distinct++
		}
		total += n
	}
	return distinct, total
}

// Accepted is how many seqs were accepted.
func (l *Ledger) Accepted() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.accepted)
}

// LastDelivery is the time of the last successful invocation.
func (l *Ledger) LastDelivery() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

// Count is N (accepted), lost (accepted, never delivered), duplicated
// (deliveries beyond the first) and unexpected (seen, never accepted).
type Count struct {
	N, Lost, Duplicated, Unexpected int
	// Retries is invocations beyond the first, successful or not.
	Retries int
}

// Count counts the logs.
func (l *Ledger) Count() Count {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := Count{N: len(l.accepted)}
	for seq := range l.accepted {
		if l.delivered[seq] == 0 {
			c.Lost++
		}
	}
	for seq, n := range l.delivered {
		if n > 1 {
			c.Duplicated += n - 1
		}
		if !l.accepted[seq] {
			c.Unexpected++
		}
	}
	for seq, n := range l.attempts {
		c.Retries += n - 1
		if !l.accepted[seq] && l.delivered[seq] == 0 {
			c.Unexpected++
		}
	}
	return c
}

// Row is one line of the table.
type Row struct {
	Fault  string // e.g. "broker kill -9"
	Target string // broker or store, e.g. "rabbitmq (quorum)"
	Count
	// Recovery is from the fault's end (process or broker answering
	// again) to the first successful invocation after it; 0 when the row
	// has no such moment.
	Recovery time.Duration
	// Status is "ok", "FAIL: why" or "not run: why".
	Status string
	// Note says what was checked or measured beyond the counts.
	Note string
}

// Table holds the rows of a run in order.
type Table struct {
	mu   sync.Mutex
	rows []Row
}

// Add appends r.
func (t *Table) Add(r Row) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows = append(t.rows, r)
}

// Rows returns the rows added so far.
func (t *Table) Rows() []Row {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Row(nil), t.rows...)
}

// Write prints the table in Markdown.
func (t *Table) Write(w io.Writer) {
	fmt.Fprintln(w, "| fault | broker / store | N | lost | duplicated | unexpected | retries | recovery s | result | note |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
	for _, r := range t.Rows() {
		rec := "–"
		if r.Recovery > 0 {
			rec = fmt.Sprintf("%.1f", r.Recovery.Seconds())
		}
		if strings.HasPrefix(r.Status, "not run") {
			fmt.Fprintf(w, "| %s | %s | – | – | – | – | – | – | %s | %s |\n", r.Fault, r.Target, r.Status, r.Note)
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %d | %d | %s | %s | %s |\n",
			r.Fault, r.Target, r.N, r.Lost, r.Duplicated, r.Unexpected, r.Retries, rec, r.Status, r.Note)
	}
}
