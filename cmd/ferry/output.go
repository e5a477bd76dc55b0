package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ferrydev/ferry/client"
)

// printer prints tasks as aligned columns (table) or as the API's JSON.
type printer struct {
	w    io.Writer
	json bool
}

// taskJSON is the task's JSON as the API sent it.
func taskJSON(t *client.Task) json.RawMessage {
	if raw := t.Raw(); raw != nil {
		return raw
	}
	b, _ := json.Marshal(t) // a Task always marshals
	return b
}

// task prints one task: a JSON object, or one "field: value" line per
// field.
func (p *printer) task(t *client.Task) {
	if p.json {
		fmt.Fprintf(p.w, "%s\n", taskJSON(t))
		return
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("id", t.ID)
	row("function", t.Function)
	row("status", string(t.Status))
	row("attempts", strconv.Itoa(t.Attempts))
	if t.Replays > 0 {
		row("replays", strconv.Itoa(t.Replays))
	}
	row("created", stamp(t.CreatedAt))
	row("updated", stamp(t.UpdatedAt))
	if t.ScheduledAt != nil {
		row("scheduled", stamp(*t.ScheduledAt))
	}
	if t.FinishedAt != nil {
		row("finished", stamp(*t.FinishedAt))
	}
	if t.Output != nil {
		row("output", oneLine(t.Output, 0))
	}
	if t.Error != nil {
		row("error", t.Error.Error())
	} else if t.LastError != nil {
		row("last error", t.LastError.Error())
	}
	for _, d := range t.Deliveries {
		v := fmt.Sprintf("%s (%s) %s, attempts: %d", d.Destination, d.Kind, d.State, d.Attempts)
		if d.LastError != "" {
			v += ": " + d.LastError
		}
		row("delivery", v)
	}
	_ = tw.Flush()
}

// taskTable prints tasks as rows under a header line.
type taskTable struct {
	tw *tabwriter.Writer
}

func (p *printer) newTaskTable() *taskTable {
	tb := &taskTable{tw: tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)}
	fmt.Fprintln(tb.tw, "ID\tFUNCTION\tSTATUS\tATTEMPTS\tCREATED\tUPDATED")
	return tb
}

func (tb *taskTable) add(t *client.Task) {
	fmt.Fprintf(tb.tw, "%s\t%s\t%s\t%d\t%s\t%s\n", t.ID, t.Function, t.Status, t.Attempts, stamp(t.CreatedAt), stamp(t.UpdatedAt))
}

func (tb *taskTable) flush() { _ = tb.tw.Flush() }

// outcomeLine is one finished task of a stream (tail): a JSON line, or a
// line of fixed-width columns (outcomeHeader) with the output or error.
func (p *printer) outcomeLine(t *client.Task) {
	if p.json {
		fmt.Fprintf(p.w, "%s\n", taskJSON(t))
		return
	}
	finished := t.UpdatedAt
	if t.FinishedAt != nil {
		finished = *t.FinishedAt
	}
	result := ""
	switch {
	case t.Error != nil:
		result = oneLine([]byte(t.Error.Error()), 100)
	case t.Output != nil:
		result = oneLine(t.Output, 100)
	}
	fmt.Fprintf(p.w, outcomeFormat, stamp(finished), t.ID, t.Status, t.Attempts, result)
}

const outcomeFormat = "%-20s  %-36s  %-9s  %8v  %s\n"

func (p *printer) outcomeHeader() {
	if !p.json {
		fmt.Fprintf(p.w, outcomeFormat, "FINISHED", "ID", "STATUS", "ATTEMPTS", "RESULT")
	}
}

// stamp formats a time for a table: UTC, to the second.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// oneLine makes b printable on one line, cut to at most limit runes (0: no
// limit).
func oneLine(b []byte, limit int) string {
	s := string(b)
	var compact bytes.Buffer
	if json.Compact(&compact, b) == nil {
		s = compact.String()
	} else {
		s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s)
	}
	if r := []rune(s); limit > 0 && len(r) > limit {
		s = string(r[:limit-1]) + "…"
	}
	return s
}
