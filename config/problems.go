package config

import (
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a config file, located by line.
type Problem struct {
	// File is the path the config was read from.
	File string
	// Line is the 1-based line of the offending key or value; 0 when the
	// problem has no line (a required key that is absent, a config built in
	// code).
	Line int
	// Message names the field ("functions[0].retry.max_interval: ...") and
	// says what is wrong. It never contains a secret.
	Message string
}

// String formats p as "FILE:LINE: message", or "FILE: message" when the
// line is unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		b.WriteString(strconv.Itoa(p.Line) + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is every problem found in a config file. Parse, Load and
// Validate return it as their error, so callers can print one line per
// problem or inspect them with errors.As.
type Problems []Problem

// Error returns one line per problem, "FILE:LINE: message", sorted by line
// (problems without a line first), without a trailing newline.
func (ps Problems) Error() string {
	sorted := append(Problems(nil), ps...)
	sorted.sort()
	lines := make([]string, len(sorted))
	for i, p := range sorted {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// sort orders ps by line, keeping the order of problems on one line.
func (ps Problems) sort() {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
}
