package timer

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// parser reads standard 5-field cron expressions, an optional leading
// seconds field (6 fields) and the descriptors (@yearly, @monthly,
// @weekly, @daily, @midnight, @hourly, @every <duration>).
var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Schedule is when a timer ticks: a cron expression read in a time zone,
// or @every d aligned to the Unix epoch. Its tick instants depend only on
// the expression and the zone, never on when a process started, so every
// node and every restart agrees on them (they name the ticks' tasks).
type Schedule struct {
	spec  *cron.SpecSchedule // nil for @every
	every time.Duration      // > 0 for @every
	loc   *time.Location
}

// horizon bounds how far ahead ParseSchedule looks for a first tick: an
// expression without a tick in it (February 30th) is refused.
const horizon = 5 * 366 * 24 * time.Hour

// ParseSchedule reads expr (a 5-field cron expression, an optional leading
// seconds field, or a descriptor such as @hourly or @every 10s) in loc
// (nil: UTC). @every takes a whole number of seconds, at least 1s; its
// ticks are the multiples of d since the Unix epoch, whatever the zone.
// The zone goes in loc, never in the expression (TZ= and CRON_TZ=
// prefixes are refused), and an expression that never ticks within five
// years is refused.
func ParseSchedule(expr string, loc *time.Location) (*Schedule, error) {
	if loc == nil {
		loc = time.UTC
	}
	expr = strings.TrimSpace(expr)
	if strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ=") {
		return nil, errors.New("a time zone prefix is not allowed in the expression: set timezone instead")
	}
	if d, ok := strings.CutPrefix(expr, "@every "); ok {
		every, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil {
			return nil, fmt.Errorf("@every %q is not a duration (use e.g. 10s, 5m, 1h)", strings.TrimSpace(d))
		}
		if every < time.Second || every%time.Second != 0 {
			return nil, fmt.Errorf("@every %s: the interval must be a whole number of seconds, at least 1s", every)
		}
		return &Schedule{every: every, loc: loc}, nil
	}
	s, err := parser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%q is not a cron expression: %w", expr, err)
	}
	spec, ok := s.(*cron.SpecSchedule)
	if !ok { // every other form was handled above
		return nil, fmt.Errorf("%q is not a cron expression", expr)
	}
	spec.Location = loc
	sch := &Schedule{spec: spec, loc: loc}
	// Probe from a fixed instant, so that validation does not depend on
	// today's date.
	from := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if n := sch.Next(from); n.IsZero() || n.Sub(from) > horizon {
		return nil, fmt.Errorf("%q never matches a date (within five years)", expr)
	}
	return sch, nil
}

// Location is the schedule's time zone.
func (s *Schedule) Location() *time.Location { return s.loc }

// Next returns the first tick strictly after t (zero when there is none
// within five years). Ticks are whole seconds. In the schedule's zone,
// daylight saving time neither doubles nor loses a tick: a wall time in
// the hour that repeats (fall back) ticks once, at its first occurrence;
// the wall times that vanish (spring forward) tick once, at the instant
// of the jump (when a later wall time also ticks then, that is still one
// tick).
func (s *Schedule) Next(t time.Time) time.Time {
	if s.spec == nil {
		e := int64(s.every / time.Second)
		sec := t.Unix() // floor, also for t before the epoch with a fraction
		return time.Unix((floorDiv(sec, e)+1)*e, 0).UTC()
	}
	for range maxRepeats {
		n := s.spec.Next(t)
		if n.IsZero() {
			return n
		}
		if jump, ok := s.vanished(t, n); ok {
			return jump
		}
		if end, ok := repeated(n.In(s.loc)); ok {
			// n's wall time ticked already, before the clocks went
			// back: go on after the repeated stretch.
			t = end.Add(-time.Second)
			continue
		}
		return n.UTC()
	}
	return time.Time{}
}

// maxRepeats bounds Next's loop; each round passes one repeated stretch,
// of which a year has one or two.
const maxRepeats = 16

// vanished reports the first forward jump in (t, n] at which the
// schedule would have ticked at a wall time the jump skipped: the tick
// moves to the jump. robfig/cron steps over such wall times (so 30 2 * * *
// would not tick at all on the day of the jump).
func (s *Schedule) vanished(t, n time.Time) (time.Time, bool) {
	for at := t; ; {
		_, end := at.In(s.loc).ZoneBounds()
		if end.IsZero() || end.After(n) {
			return time.Time{}, false
		}
		_, before := end.Add(-time.Nanosecond).In(s.loc).Zone()
		_, after := end.In(s.loc).Zone()
		if gap := time.Duration(after-before) * time.Second; gap > 0 {
			// The wall times [end+before, end+after) do not exist. Read
			// the expression in the zone before the jump, where they do:
			// a tick among them moves to the jump.
			spec := *s.spec
			spec.Location = time.FixedZone("", before)
			if x := spec.Next(at); !x.Before(end) && x.Before(end.Add(gap)) {
				return end.UTC(), true
			}
		}
		at = end
	}
}

// repeated reports whether t lies in the stretch after the clocks went
// back whose wall times occurred once already, and when it ends.
func repeated(t time.Time) (time.Time, bool) {
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return time.Time{}, false
	}
	_, before := start.Add(-time.Nanosecond).In(t.Location()).Zone()
	_, after := t.Zone()
	back := time.Duration(before-after) * time.Second
	if back <= 0 || !t.Before(start.Add(back)) {
		return time.Time{}, false
	}
	return start.Add(back), true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
