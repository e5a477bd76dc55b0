package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxValues bounds the values one document may decode into, so that a few
// aliases cannot expand into billions of values.
const maxValues = 1 << 20

var (
	durationType   = reflect.TypeFor[Duration]()
	byteSizeType   = reflect.TypeFor[ByteSize]()
	stringListType = reflect.TypeFor[StringList]()
	jsonType       = reflect.TypeFor[JSON]()
)

// decoder decodes a yaml.Node tree into a Go value by reflection, collecting
// every problem instead of stopping at the first, and recording the line of
// every path it decodes.
type decoder struct {
	file      string
	lookupEnv func(string) (string, bool)
	// lines maps a field path ("functions[0].retry") to the line of its key
	// (or, for a list item, of the item).
	lines map[string]int
	// bad holds the paths whose decoding failed; validation stays quiet
	// about them so that one mistake is reported once.
	bad      []string
	problems Problems
	budget   int
	tooLarge bool
}

func newDecoder(file string, lookupEnv func(string) (string, bool)) *decoder {
	return &decoder{file: file, lookupEnv: lookupEnv, lines: map[string]int{}, budget: maxValues}
}

// fail records a problem about path at line.
func (d *decoder) fail(path string, line int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	d.problems = append(d.problems, Problem{File: d.file, Line: line, Message: msg})
	d.bad = append(d.bad, path)
}

// parseFail records that the value at path is not what (a duration, a
// size): err's message, which quotes the value, or a message without the
// value when path may hold a secret.
func (d *decoder) parseFail(path string, line int, err error, what string) {
	if secretPath(path) {
		d.fail(path, line, "%s is not %s", hidden, what)
		return
	}
	d.fail(path, line, "%v", err)
}

// spend takes cost from the decoding budget, and reports once, at line,
// when it runs out.
func (d *decoder) spend(cost, line int) bool {
	if d.budget -= cost; d.budget >= 0 {
		return true
	}
	if !d.tooLarge {
		d.tooLarge = true
		d.fail("", line, "document too large: aliases expand to more than %d values", maxValues)
	}
	return false
}

// join returns the path of key inside path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names what the node at path is, for "expected X, got Y"
// messages; a scalar's value is hidden when path may hold a secret.
func describe(path string, n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if secretPath(path) {
			return "a string (not shown: it may be a secret)"
		}
		return strconv.Quote(n.Value)
	}
	return "nothing"
}

// value decodes n into v, which must be settable.
func (d *decoder) value(path string, n *yaml.Node, v reflect.Value) {
	n = resolve(n)
	if n == nil || n.Kind == yaml.AliasNode {
		d.fail(path, 0, "alias too deep")
		return
	}
	if !d.spend(1, n.Line) {
		return
	}
	switch v.Type() {
	case durationType:
		if s, ok := d.scalar(path, n, "a duration"); ok {
			if x, err := ParseDuration(s); err != nil {
				d.parseFail(path, n.Line, err, "a duration")
			} else {
				v.Set(reflect.ValueOf(x))
			}
		}
		return
	case stringListType:
		if n.Kind == yaml.ScalarNode && !isNull(n) {
			if s, ok := d.scalar(path, n, "a string"); ok {
				v.Set(reflect.ValueOf(StringList{s}))
			}
			return
		}
		d.slice(path, n, v)
		return
	case jsonType:
		if !isNull(n) {
			if b, ok := d.decodeJSON(path, n); ok {
				v.Set(reflect.ValueOf(b))
			}
		}
		return
	case byteSizeType:
		if s, ok := d.scalar(path, n, "a size"); ok {
			if x, err := ParseByteSize(s); err != nil {
				d.parseFail(path, n.Line, err, "a size")
			} else {
				v.Set(reflect.ValueOf(x))
			}
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		// Present means allocated, even when empty ("log: {}", "log:").
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(path, n, v.Elem())
	case reflect.Struct:
		d.structure(path, n, v)
	case reflect.Slice:
		d.slice(path, n, v)
	case reflect.Map:
		d.mapping(path, n, v)
	case reflect.String:
		if s, ok := d.scalar(path, n, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if s, ok := d.scalar(path, n, "an integer"); ok {
			x, err := strconv.ParseInt(strings.TrimSpace(s), 0, 64)
			if err != nil || v.OverflowInt(x) {
				d.fail(path, n.Line, "%s is not an integer", shown(path, s))
				return
			}
			v.SetInt(x)
		}
	case reflect.Float32, reflect.Float64:
		if s, ok := d.scalar(path, n, "a number"); ok {
			x, err := parseFloat(s)
			if err != nil {
				d.fail(path, n.Line, "%s is not a number", shown(path, s))
				return
			}
			v.SetFloat(x)
		}
	case reflect.Bool:
		if s, ok := d.scalar(path, n, "true or false"); ok {
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "true", "yes", "on":
				v.SetBool(true)
			case "false", "no", "off":
				v.SetBool(false)
			default:
				d.fail(path, n.Line, "%s is not a boolean (use true or false)", shown(path, s))
			}
		}
	default:
		d.fail(path, n.Line, "cannot decode into %s", v.Type())
	}
}

// scalar returns n's value with ${VAR} expanded. It reports n when it is
// not a scalar, and returns ok false for null, which leaves the zero value.
func (d *decoder) scalar(path string, n *yaml.Node, want string) (s string, ok bool) {
	if isNull(n) {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		d.fail(path, n.Line, "expected %s, got %s", want, describe(path, n))
		return "", false
	}
	s, err := expand(n.Value, d.lookupEnv)
	if err != nil {
		d.fail(path, n.Line, "%v", err)
		return "", false
	}
	return s, true
}

func parseFloat(s string) (float64, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case ".inf", "+.inf":
		return math.Inf(1), nil
	case "-.inf":
		return math.Inf(-1), nil
	case ".nan":
		return math.NaN(), nil
	}
	return strconv.ParseFloat(strings.TrimSpace(s), 64)
}

// fieldNames maps the yaml names of t's fields to their indexes, and lists
// the names in declaration order.
func fieldNames(t reflect.Type) (map[string]int, []string) {
	idx := map[string]int{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		idx[name] = i
		names = append(names, name)
	}
	return idx, names
}

func (d *decoder) structure(path string, n *yaml.Node, v reflect.Value) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(path, n.Line, "expected a mapping, got %s", describe(path, n))
		return
	}
	idx, names := fieldNames(v.Type())
	for _, e := range d.entries(path, n) {
		p := join(path, e.key.Value)
		i, ok := idx[e.key.Value]
		if !ok {
			d.fail(p, e.key.Line, "unknown key (known: %s)", strings.Join(names, ", "))
			continue
		}
		d.lines[p] = e.key.Line
		d.value(p, e.val, v.Field(i))
	}
}

func (d *decoder) slice(path string, n *yaml.Node, v reflect.Value) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.fail(path, n.Line, "expected a list, got %s", describe(path, n))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		d.value(p, item, s.Index(i))
	}
	v.Set(s)
}

func (d *decoder) mapping(path string, n *yaml.Node, v reflect.Value) {
	if isNull(n) {
		return
	}
	if v.Type().Key().Kind() != reflect.String {
		d.fail(path, n.Line, "cannot decode into %s", v.Type())
		return
	}
	if n.Kind != yaml.MappingNode {
		d.fail(path, n.Line, "expected a mapping, got %s", describe(path, n))
		return
	}
	m := reflect.MakeMap(v.Type())
	for _, e := range d.entries(path, n) {
		p := join(path, e.key.Value)
		d.lines[p] = e.key.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		d.value(p, e.val, elem)
		m.SetMapIndex(reflect.ValueOf(e.key.Value).Convert(v.Type().Key()), elem)
	}
	v.Set(m)
}

type entry struct{ key, val *yaml.Node }

// entries returns the key/value pairs of mapping n with merge keys ("<<")
// flattened: keys written in n win over merged ones, and earlier merged
// mappings win over later ones. Duplicate and non-scalar keys are reported
// and left out.
func (d *decoder) entries(path string, n *yaml.Node) []entry {
	if !d.spend(1+len(n.Content)/2, n.Line) {
		return nil
	}
	var explicit, merged []entry
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(path, k, val)...)
			continue
		}
		explicit = append(explicit, entry{k, val})
	}
	seen := map[string]int{}
	out := make([]entry, 0, len(explicit)+len(merged))
	for _, e := range explicit {
		if k := resolve(e.key); k == nil || k.Kind != yaml.ScalarNode {
			d.fail(path, e.key.Line, "keys must be strings")
			continue
		}
		e.key = resolve(e.key)
		if line, dup := seen[e.key.Value]; dup {
			d.fail(join(path, e.key.Value), e.key.Line, "duplicate key (first defined at line %d)", line)
			continue
		}
		seen[e.key.Value] = e.key.Line
		out = append(out, e)
	}
	for _, e := range merged {
		if _, dup := seen[e.key.Value]; !dup {
			seen[e.key.Value] = e.key.Line
			out = append(out, e)
		}
	}
	return out
}

// merge returns the entries a merge key brings in: from one mapping or a
// list of mappings.
func (d *decoder) merge(path string, k, val *yaml.Node) []entry {
	val = resolve(val)
	switch {
	case val != nil && val.Kind == yaml.MappingNode:
		return d.entries(path, val)
	case val != nil && val.Kind == yaml.SequenceNode:
		var out []entry
		for _, item := range val.Content {
			if m := resolve(item); m != nil && m.Kind == yaml.MappingNode {
				out = append(out, d.entries(path, m)...)
				continue
			}
			d.fail(join(path, "<<"), item.Line, "a merge list must hold only mappings")
		}
		return out
	}
	d.fail(join(path, "<<"), k.Line, "a merge key must name a mapping or a list of mappings")
	return nil
}
