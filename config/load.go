package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Load reads the config file at path and parses it with Parse, expanding
// ${VAR} from the process environment. A file that cannot be read is an
// error wrapping the os error; a file with problems is a Problems error.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse decodes, defaults and validates the YAML config in data; file names
// it in problems and becomes Config.File.
//
// ${VAR} in a scalar value (never in a key) is replaced by lookupEnv(VAR);
// an unset variable is a problem, and "$$" stands for a literal "$". A nil
// lookupEnv finds no variable.
//
// Zero fields take the Default* values after decoding. Parse returns either
// a valid Config and a nil error, or a nil Config and a Problems error that
// lists every problem found (syntax, unknown or duplicate keys, wrong
// kinds, bad durations or sizes, invalid values), each with its line.
func Parse(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	c, problems := parse(file, data, lookupEnv)
	if len(problems) > 0 {
		return nil, problems
	}
	return c, nil
}

// parse does Parse's work and returns the Config even when it has problems.
func parse(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, Problems) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	root, p := parseYAML(file, data)
	if p != nil {
		return nil, Problems{*p}
	}
	c := &Config{File: file}
	d := newDecoder(file, lookupEnv)
	if root != nil {
		d.value("", root, reflect.ValueOf(c).Elem())
	}
	c.ApplyDefaults()
	v := &validator{file: file, lines: d.lines, bad: d.bad}
	v.config(c)
	problems := append(d.problems, v.problems...)
	problems.sort()
	v.warnings.sort()
	c.Warnings = v.warnings
	return c, problems
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// parserProblems are yaml.v3's parser (not scanner) errors. yaml.v3 v3.0.1
// reports their line 0-based (and omits it on the first line), while
// scanner errors are 1-based.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// parseYAML returns the top node of the single document in data (nil when
// data holds no document), or the syntax problem.
func parseYAML(file string, data []byte) (root *yaml.Node, p *Problem) {
	defer func() {
		// yaml.v3 has panicked on hostile input before; a config loader
		// must not take the process down.
		if r := recover(); r != nil {
			root, p = nil, &Problem{File: file, Message: fmt.Sprintf("invalid YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlProblem(file, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Problem{File: file, Line: next.Line, Message: "only one YAML document is allowed"}
	case !errors.Is(err, io.EOF):
		return nil, yamlProblem(file, err)
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

// yamlProblem turns a yaml.v3 error ("yaml: line 3: did not find ...")
// into a Problem on that line.
func yamlProblem(file string, err error) *Problem {
	msg := err.Error()
	line := 0
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if parserProblems[msg] {
		line++
	}
	return &Problem{File: file, Line: line, Message: msg}
}

// expand replaces ${NAME} in s with lookupEnv(NAME) and "$$" with "$". A
// "$" followed by anything else is kept as it is.
func expand(s string, lookupEnv func(string) (string, bool)) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", errors.New(`unterminated "${" (write "$$" for a literal "$")`)
			}
			name := s[i+2 : i+2+end]
			if !validEnvName(name) {
				return "", fmt.Errorf("%q is not a valid environment variable name", name)
			}
			val, ok := lookupEnv(name)
			if !ok {
				return "", fmt.Errorf("environment variable %s is not set", name)
			}
			b.WriteString(val)
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String(), nil
}

// validEnvName reports whether name is [A-Za-z_][A-Za-z0-9_]*.
func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', 'A' <= r && r <= 'Z', 'a' <= r && r <= 'z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
