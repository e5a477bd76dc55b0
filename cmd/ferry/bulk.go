package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"

	"github.com/ferrydev/ferry/client"
)

// maxShownRefusals is how many refusals the table summary lists.
const maxShownRefusals = 10

// bulkItem is one task of a --file, with its line number.
type bulkItem struct {
	line int
	item client.BatchItem
}

// readBulk reads a JSON-lines file of batch items, skipping blank lines. A
// malformed line is a usage error naming FILE:LINE.
func readBulk(e env, path string) ([]bulkItem, error) {
	var r io.Reader = e.stdin
	name := "stdin"
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--file: %w", err)
		}
		defer f.Close()
		r, name = f, path
	}
	br := bufio.NewReader(r)
	var items []bulkItem
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var it client.BatchItem
			if uerr := json.Unmarshal(line, &it); uerr != nil {
				return nil, usageErrorf("%s:%d: %v", name, n, uerr)
			}
			items = append(items, bulkItem{line: n, item: it})
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("--file %s: line %d: %w", name, n, err)
		}
	}
	if len(items) == 0 {
		return nil, usageErrorf("%s: no tasks (want one JSON object per line)", name)
	}
	return items, nil
}

// refusal is one refused line.
type refusal struct {
	Line  int          `json:"line"`
	Error refusalError `json:"error"`
}

type refusalError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// submitFile submits every line of path through the batch endpoint,
// client.MaxBatch per request, and prints what was accepted and refused.
func submitFile(ctx context.Context, e env, c *client.Client, p *printer, fn, path string) error {
	items, err := readBulk(e, path)
	if err != nil {
		return err
	}
	bar := newBar(e, len(items))
	accepted := 0
	var refused []refusal
	var sendErr error
	sent := 0
	for sent < len(items) {
		chunk := items[sent:min(sent+client.MaxBatch, len(items))]
		batch := make([]client.BatchItem, len(chunk))
		for i, bi := range chunk {
			batch[i] = bi.item
		}
		res, err := c.SubmitBatch(ctx, fn, batch)
		if err != nil {
			sendErr = fmt.Errorf("lines %d to %d: %w", chunk[0].line, chunk[len(chunk)-1].line, err)
			break
		}
		for i, r := range res {
			if r.Err != nil {
				refused = append(refused, refusal{chunk[i].line, refusalError{r.Err.Code, r.Err.Message}})
				if p.json {
					writeJSONLine(p.w, refused[len(refused)-1])
				}
				continue
			}
			accepted++
			if p.json {
				fmt.Fprintf(p.w, "%s\n", taskJSON(r.Task))
			}
		}
		sent += len(chunk)
		if bar != nil {
			_ = bar.Add(len(chunk))
		}
	}
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(e.stderr)
	}

	summaryTo := p.w
	if p.json {
		summaryTo = e.stderr
	}
	fmt.Fprintf(summaryTo, "accepted %d of %d tasks, refused %d", accepted, len(items), len(refused))
	if unsent := len(items) - sent; unsent > 0 {
		fmt.Fprintf(summaryTo, ", not sent %d", unsent)
	}
	fmt.Fprintln(summaryTo)
	if !p.json {
		for i, r := range refused {
			if i == maxShownRefusals {
				fmt.Fprintf(summaryTo, "  ... and %d more (--output json lists every one)\n", len(refused)-i)
				break
			}
			fmt.Fprintf(summaryTo, "  line %d: %s: %s\n", r.Line, r.Error.Code, r.Error.Message)
		}
	}
	switch {
	case sendErr != nil:
		return sendErr
	case len(refused) > 0:
		return exitSilently(exitFailed)
	}
	return nil
}

// newBar is a progress bar on stderr when stderr is a terminal, else nil.
func newBar(e env, total int) *progressbar.ProgressBar {
	if e.isTerminal == nil || !e.isTerminal(e.stderr) {
		return nil
	}
	return progressbar.NewOptions(total,
		progressbar.OptionSetWriter(e.stderr),
		progressbar.OptionSetDescription("submitting"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(0),
	)
}

func writeJSONLine(w io.Writer, v any) {
	b, _ := json.Marshal(v) // refusals always marshal
	fmt.Fprintf(w, "%s\n", b)
}
