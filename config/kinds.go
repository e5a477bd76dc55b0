package config

import (
	"fmt"
	"reflect"
)

// Broker kinds and destination kinds are registered in config by being a
// field of Source (trigger sources) or Destination (outcome
// destinations): the field's yaml name is the kind's key in ferry.yaml,
// and its type (a pointer to the kind's typed config, decoded with line
// numbers like every other field) implements SourceConfig or SinkConfig,
// which carry the kind's defaults and validation. Nothing in config
// switches on kinds: listing, defaulting, validating and the self-loop
// warning all go through those fields, in their declaration order (which
// is the order of the kinds in validation messages). A kind's typed
// config lives in config/<kind>.go; internal/assemble's kinds table wires
// each kind name to its source and sink adapters.

// SourceConfig is one broker kind's trigger source config: the type of a
// field of Source. Only config's types implement it.
type SourceConfig interface {
	// applyDefaults fills the kind's zero fields; t is the trigger it
	// belongs to (some defaults follow its batch size and concurrency).
	applyDefaults(t *Trigger)
	// validate reports the kind's problems; path is the kind's path,
	// e.g. "triggers[0].source.kafka".
	validate(v *validator, path string)
}

// SinkConfig is one destination kind's config: the type of a field of
// Destination. Only config's types implement it.
type SinkConfig interface {
	// delivery returns the kind's per-attempt timeout and retry policy
	// (nil, nil for a sink that cannot fail).
	delivery() (*Duration, *Retry)
	// applyDefaults fills the kind's zero fields other than the timeout
	// and retry policy, which destinationDefaults fills.
	applyDefaults()
	// validate reports the kind's problems; path is the kind's path,
	// e.g. "functions[0].destinations.on_success[0].kafka".
	validate(v *validator, path string)
}

// feeder is a SinkConfig that can send to where a trigger source reads.
type feeder interface {
	// feeds reports whether s has a source of the sink's kind and, when
	// the sink sends to where it reads, describes that ("to kafka topic
	// \"x\""); "" otherwise.
	feeds(s Source) (what string, sameKind bool)
}

// kindField is the field of Source or Destination that holds one kind.
type kindField struct {
	name  string // the yaml key
	index int
}

var (
	sourceKinds = kindFields(reflect.TypeFor[Source](), reflect.TypeFor[SourceConfig]())
	sinkKinds   = kindFields(reflect.TypeFor[Destination](), reflect.TypeFor[SinkConfig]())
)

// kindFields lists the kind fields of t in declaration order. Every field
// of t must be a pointer implementing iface: the struct is the registry.
func kindFields(t, iface reflect.Type) []kindField {
	idx, names := fieldNames(t)
	out := make([]kindField, 0, len(names))
	for _, name := range names {
		f := t.Field(idx[name])
		if f.Type.Kind() != reflect.Pointer || !f.Type.Implements(iface) {
			panic(fmt.Sprintf("config: %s.%s (%s) must be a pointer implementing %s", t.Name(), f.Name, f.Type, iface.Name()))
		}
		out = append(out, kindField{name: name, index: idx[name]})
	}
	return out
}

// kindNames lists the names of fields.
func kindNames(fields []kindField) []string {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.name
	}
	return names
}

// setKinds returns the names and configs of the kinds set in v, in
// declaration order.
func setKinds[C any](v reflect.Value, fields []kindField) (names []string, cfgs []C) {
	for _, f := range fields {
		if fv := v.Field(f.index); !fv.IsNil() {
			names = append(names, f.name)
			cfgs = append(cfgs, fv.Interface().(C))
		}
	}
	return names, cfgs
}

// SourceKinds lists the broker kinds a trigger source can be, in the
// order validation messages name them.
func SourceKinds() []string { return kindNames(sourceKinds) }

// SinkKinds lists the destination kinds, in the order validation messages
// name them.
func SinkKinds() []string { return kindNames(sinkKinds) }

// kinds lists the kinds set in s, and their configs.
func (s Source) kinds() ([]string, []SourceConfig) {
	return setKinds[SourceConfig](reflect.ValueOf(s), sourceKinds)
}

// Kind returns the source's broker kind ("" when none is set).
func (s Source) Kind() string {
	if names, _ := s.kinds(); len(names) > 0 {
		return names[0]
	}
	return ""
}

// Config returns the config of the source's kind (a *KafkaSource, ...;
// nil when none is set).
func (s Source) Config() SourceConfig {
	if _, cfgs := s.kinds(); len(cfgs) > 0 {
		return cfgs[0]
	}
	return nil
}

// kinds lists the kinds set in d, and their configs.
func (d Destination) kinds() ([]string, []SinkConfig) {
	return setKinds[SinkConfig](reflect.ValueOf(d), sinkKinds)
}

// Kind returns the destination's sink kind ("webhook", "kafka",
// "rocketmq", "rabbitmq", "redis", "log"; "" when none is set).
func (d Destination) Kind() string {
	if names, _ := d.kinds(); len(names) > 0 {
		return names[0]
	}
	return ""
}

// Config returns the config of the destination's kind (a *WebhookSink,
// *KafkaSink, ...; nil when none is set).
func (d Destination) Config() SinkConfig {
	if _, cfgs := d.kinds(); len(cfgs) > 0 {
		return cfgs[0]
	}
	return nil
}

// Delivery returns the delivery timeout and retry policy of the
// destination's sink (nil for the log sink, which cannot fail).
func (d Destination) Delivery() (*Duration, *Retry) {
	if c := d.Config(); c != nil {
		return c.delivery()
	}
	return nil, nil
}

// addresses reports path when a broker kind's address list is empty; what
// names one address ("broker", "name server").
func (v *validator) addresses(path string, addrs []string, what string) {
	if len(addrs) == 0 {
		v.report(path, nil, "at least one %s address is required", what)
	}
}

// required reports path when val is empty.
func (v *validator) required(path, val string) {
	if val == "" {
		v.report(path, nil, "is required")
	}
}
