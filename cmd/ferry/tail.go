package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrydev/ferry/client"
)

// tailWindow is how many of the function's newest tasks tail reads per
// poll (the API's largest page).
const tailWindow = 1000

func newTailCmd(e env) *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "tail FN",
		Short: "Print the outcomes of a function's tasks as they finish",
		Long: `Follow the function FN: print each task once when it finishes (succeeded,
failed or cancelled), until Ctrl-C. Tasks that had finished when tail
started are not printed; a replayed task is printed again when it finishes
again.

tail polls GET /v1/tasks?function=FN every --interval and sees the newest
1000 tasks of the function (by submission): a task submitted before 1000
newer ones that finishes later is not printed. Errors that a retry can
fix (Ferry unreachable, 503) are reported on stderr and polling goes on.`,
		Example: `  ferry tail echo
  ferry tail echo --output json | jq -c '{id, status, output}'`,
		Args:              exactArgs(1, "the function name"),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	cf := newClientFlags(e, cmd)
	cmd.Flags().DurationVar(&interval, "interval", time.Second, "how often to poll")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		if interval <= 0 {
			return usageErrorf("--interval %s: want a positive duration", interval)
		}
		c, p, err := cf.client(cmd)
		if err != nil {
			return err
		}
		return tail(cmd.Context(), e, c, p, args[0], interval)
	})
	return cmd
}

// tail polls until ctx ends; only an error a retry cannot fix ends it
// early.
func tail(ctx context.Context, e env, c *client.Client, p *printer, fn string, interval time.Duration) error {
	p.outcomeHeader()
	var seen map[string]bool // finished tasks in the latest window; nil before the first poll
	for {
		page, err := c.List(ctx, client.ListOptions{Function: fn, Limit: tailWindow})
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			var apiErr *client.Error
			if errors.As(err, &apiErr) && !apiErr.Temporary() {
				return err
			}
			fmt.Fprintf(e.stderr, "ferry tail: %v; polling on\n", err)
		default:
			seen = printFinished(p, page.Tasks, seen)
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// printFinished prints the finished tasks of window not in seen (none on
// the first poll, when seen is nil), oldest outcome first, and returns the
// finished tasks of window. A task that leaves the window never comes back
// to it (the window holds the newest tasks), so seen stays within it.
func printFinished(p *printer, window []*client.Task, seen map[string]bool) map[string]bool {
	now := make(map[string]bool, len(window))
	var fresh []*client.Task
	for _, t := range window {
		if !t.Status.Final() {
			continue
		}
		now[t.ID] = true
		if seen != nil && !seen[t.ID] {
			fresh = append(fresh, t)
		}
	}
	sort.SliceStable(fresh, func(i, j int) bool { return finishedAt(fresh[i]).Before(finishedAt(fresh[j])) })
	for _, t := range fresh {
		p.outcomeLine(t)
	}
	return now
}

func finishedAt(t *client.Task) time.Time {
	if t.FinishedAt != nil {
		return *t.FinishedAt
	}
	return t.UpdatedAt
}
