package config

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ferrydev/ferry/timer"
)

// Timer trigger defaults and bounds.
const (
	// DefaultCatchUp is a timer trigger's catch_up: after downtime (or a
	// pause), the latest missed tick runs.
	DefaultCatchUp = CatchUpLast
	// DefaultMaxLateness is how late a missed tick may still run.
	DefaultMaxLateness = time.Hour
	// MaxMaxLateness bounds max_lateness: the window in which a tick's
	// idempotency key keeps it from running twice (24h).
	MaxMaxLateness = timer.IdempotencyWindow
	// DefaultTimezone is the zone a cron expression is read in.
	DefaultTimezone = "UTC"
)

// catch_up values.
const (
	CatchUpNone = "none"
	CatchUpLast = "last"
	CatchUpAll  = "all"
)

// TimerSource ticks on a schedule; each tick submits one task to the
// trigger's function, exactly once however many nodes run it.
type TimerSource struct {
	// Cron is a 5-field cron expression, optionally with a leading seconds
	// field, or a descriptor: @every <duration> (aligned to the Unix
	// epoch), @hourly, @daily, @weekly, @monthly, @yearly.
	Cron string `yaml:"cron"`
	// Timezone is the IANA zone the expression is read in. Defaults to
	// UTC.
	Timezone string `yaml:"timezone"`
	// Payload is every tick's task body, any YAML/JSON value, sent as
	// JSON. Defaults to {}.
	Payload JSON `yaml:"payload"`
}

// JSON is a value written in YAML and kept as its JSON encoding.
type JSON []byte

func (s *TimerSource) applyDefaults(t *Trigger) {
	setDefault(&s.Timezone, DefaultTimezone)
	setDefault(&t.CatchUp, DefaultCatchUp)
	setDefault(&t.MaxLateness, Duration(DefaultMaxLateness))
	if len(s.Payload) == 0 {
		s.Payload = JSON("{}")
	}
}

func (s *TimerSource) validate(v *validator, p string) {
	loc, err := s.Location()
	if err != nil {
		v.report(p+".timezone", nil, "%v", err)
	}
	switch {
	case s.Cron == "":
		v.report(p+".cron", nil, "is required")
	case err == nil:
		if _, err := timer.ParseSchedule(s.Cron, loc); err != nil {
			v.report(p+".cron", nil, "%v", err)
		}
	}
}

// Location loads the timer's time zone.
func (s *TimerSource) Location() (*time.Location, error) {
	if s.Timezone == "Local" {
		return nil, fmt.Errorf(`"Local" depends on each machine's settings: name an IANA zone such as Europe/Berlin, or UTC`)
	}
	loc, err := time.LoadLocation(s.Timezone)
	if err != nil {
		return nil, fmt.Errorf("%q is not a known time zone (use an IANA name such as Europe/Berlin, or UTC)", s.Timezone)
	}
	return loc, nil
}

// Schedule parses the timer's expression in its zone.
func (s *TimerSource) Schedule() (*timer.Schedule, error) {
	loc, err := s.Location()
	if err != nil {
		return nil, err
	}
	return timer.ParseSchedule(s.Cron, loc)
}

// timerTrigger checks what a timer trigger takes and does not take.
func (v *validator) timerTrigger(c *Config, p string, t *Trigger) {
	v.oneOf(p+".catch_up", t.CatchUp, CatchUpNone, CatchUpLast, CatchUpAll)
	limit := min(MaxMaxLateness, c.Store.Retention.D())
	if t.MaxLateness.D() > limit {
		v.report(p+".max_lateness", nil,
			"%s is longer than %s: a tick's task is kept from running twice only for 24h (its idempotency key) and store.retention (%s)",
			t.MaxLateness.D(), limit, c.Store.Retention.D())
	}
	notTaken := []struct {
		key, why string
		set      bool
	}{
		{"start", "use catch_up", t.Start != DefaultStart},
		{"batch", "each tick is one task", t.Batch != Batch{Size: DefaultBatchSize}},
		{"concurrency", "the function's max_concurrency limits its tasks", t.Concurrency != DefaultTriggerConc},
		{"filter", "every tick runs", t.Filter != nil},
		{"retry", "its tasks retry with the function's retry policy", t.Retry != nil},
		{"destinations", "its tasks' outcomes go to the function's destinations", len(t.Destinations.OnFailure) > 0},
	}
	for _, k := range notTaken {
		if k.set || v.present(p+"."+k.key) {
			v.report(p+"."+k.key, nil, "a timer trigger takes no %s (%s)", k.key, k.why)
		}
	}
}

// brokerTrigger refuses the timer-only keys on a broker trigger.
func (v *validator) brokerTrigger(p string, t *Trigger) {
	for _, k := range []struct {
		key string
		set bool
	}{{"catch_up", t.CatchUp != ""}, {"max_lateness", t.MaxLateness != 0}} {
		if k.set || v.present(p+"."+k.key) {
			v.report(p+"."+k.key, nil, "applies to timer triggers only")
		}
	}
}

// present reports whether the file has the key at path.
func (v *validator) present(path string) bool {
	_, ok := v.lines[path]
	return ok
}

// jsonValue decodes the YAML value n into what encoding/json writes:
// mappings with string keys, lists, strings (with ${VAR} expanded),
// numbers, booleans and null.
func (d *decoder) jsonValue(path string, n *yaml.Node) (any, bool) {
	n = resolve(n)
	if n == nil || n.Kind == yaml.AliasNode {
		d.fail(path, 0, "alias too deep")
		return nil, false
	}
	if !d.spend(1, n.Line) {
		return nil, false
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		for _, e := range d.entries(path, n) {
			x, ok := d.jsonValue(join(path, e.key.Value), e.val)
			if !ok {
				return nil, false
			}
			m[e.key.Value] = x
		}
		return m, true
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			x, ok := d.jsonValue(fmt.Sprintf("%s[%d]", path, i), item)
			if !ok {
				return nil, false
			}
			l = append(l, x)
		}
		return l, true
	case yaml.ScalarNode:
		return d.jsonScalar(path, n)
	}
	d.fail(path, n.Line, "expected a JSON value, got %s", describe(path, n))
	return nil, false
}

func (d *decoder) jsonScalar(path string, n *yaml.Node) (any, bool) {
	switch n.ShortTag() {
	case "!!null":
		return nil, true
	case "!!bool":
		b, err := strconv.ParseBool(strings.ToLower(n.Value))
		if err != nil {
			d.fail(path, n.Line, "%s is not a boolean", shown(path, n.Value))
			return nil, false
		}
		return b, true
	case "!!int":
		x, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64)
		if err != nil {
			d.fail(path, n.Line, "%s is not an integer JSON can hold", shown(path, n.Value))
			return nil, false
		}
		return x, true
	case "!!float":
		x, err := parseFloat(n.Value)
		if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
			d.fail(path, n.Line, "%s is not a JSON number", shown(path, n.Value))
			return nil, false
		}
		return x, true
	}
	s, ok := d.scalar(path, n, "a string")
	return s, ok
}

// decodeJSON returns the JSON encoding of the YAML value n.
func (d *decoder) decodeJSON(path string, n *yaml.Node) (JSON, bool) {
	x, ok := d.jsonValue(path, n)
	if !ok {
		return nil, false
	}
	b, err := json.Marshal(x)
	if err != nil {
		d.fail(path, n.Line, "cannot be written as JSON: %v", err)
		return nil, false
	}
	return b, true
}
