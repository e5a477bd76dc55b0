package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ferrydev/ferry/client"
)

var statuses = []string{"queued", "running", "succeeded", "failed", "cancelled"}

func newTasksCmd(e env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tasks (get|list|cancel|replay)",
		Short: "Read, list, cancel and replay tasks",
		Example: `  ferry tasks get 0190a5b2-...
  ferry tasks list --function echo --status failed
  ferry tasks cancel 0190a5b2-...
  ferry tasks replay 0190a5b2-...`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return usageErrorf("%s needs a command: get, list, cancel or replay", cmd.CommandPath())
		},
	}
	cf := newClientFlags(e, cmd)
	cmd.AddCommand(
		taskCmd(cf, "get ID", "Print a task", "  ferry tasks get 0190a5b2-...\n  ferry tasks get 0190a5b2-... --output json | jq .output",
			(*client.Client).Get),
		taskCmd(cf, "cancel ID", "Cancel a queued task (exit 1 when it is running or finished)", "  ferry tasks cancel 0190a5b2-...",
			(*client.Client).Cancel),
		taskCmd(cf, "replay ID", "Queue a failed task again with a fresh retry budget", "  ferry tasks replay 0190a5b2-...",
			(*client.Client).Replay),
		newListCmd(e, cf),
	)
	return cmd
}

// taskCmd is a command that calls one task method and prints the task.
func taskCmd(cf *clientFlags, use, short, example string,
	call func(*client.Client, context.Context, string) (*client.Task, error)) *cobra.Command {
	return &cobra.Command{
		Use:               use,
		Short:             short,
		Example:           example,
		Args:              exactArgs(1, "the task id"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			c, p, err := cf.client(cmd)
			if err != nil {
				return err
			}
			t, err := call(c, cmd.Context(), args[0])
			if err != nil {
				return err
			}
			p.task(t)
			return nil
		}),
	}
}

func newListCmd(e env, cf *clientFlags) *cobra.Command {
	var (
		opts client.ListOptions
		all  bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tasks, newest first",
		Long: `List the tenant's tasks, newest first: one page of --limit tasks (default
100, at most 1000). The table ends with the command for the next page on
stderr; --output json prints the API's page, {"tasks": [...],
"next_cursor": "..."}. With --all, every page is read (--limit tasks per
request, default 1000) and --output json prints one task per line.`,
		Example: `  ferry tasks list
  ferry tasks list --function echo --status failed --limit 20
  ferry tasks list --all --output json | jq -r .id`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Function, "function", "", "only the tasks of this function")
	fl.StringVar((*string)(&opts.Status), "status", "", "only tasks in this status: queued, running, succeeded, failed or cancelled")
	fl.IntVar(&opts.Limit, "limit", 0, "tasks per page, 1 to 1000 (default 100; with --all 1000)")
	fl.StringVar(&opts.Cursor, "cursor", "", "continue from a listing's next_cursor")
	fl.BoolVar(&all, "all", false, "read every page")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(statuses, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = runE(func(cmd *cobra.Command, _ []string) error {
		if err := checkList(opts); err != nil {
			return err
		}
		c, p, err := cf.client(cmd)
		if err != nil {
			return err
		}
		if all {
			if opts.Limit == 0 {
				opts.Limit = 1000
			}
			return listAll(cmd.Context(), c, p, opts)
		}
		page, err := c.List(cmd.Context(), opts)
		if err != nil {
			return err
		}
		if p.json {
			raws := make([]json.RawMessage, len(page.Tasks))
			for i, t := range page.Tasks {
				raws[i] = taskJSON(t)
			}
			writeJSONLine(p.w, struct {
				Tasks      []json.RawMessage `json:"tasks"`
				NextCursor string            `json:"next_cursor"`
			}{raws, page.NextCursor})
			return nil
		}
		tb := p.newTaskTable()
		for _, t := range page.Tasks {
			tb.add(t)
		}
		tb.flush()
		if page.NextCursor != "" {
			fmt.Fprintf(e.stderr, "more: ferry tasks list --cursor %s (or --all)\n", page.NextCursor)
		}
		return nil
	})
	return cmd
}

// checkList refuses a status or limit the API would refuse.
func checkList(opts client.ListOptions) error {
	if opts.Limit < 0 || opts.Limit > 1000 {
		return usageErrorf("--limit %d: want 1 to 1000", opts.Limit)
	}
	if opts.Status == "" {
		return nil
	}
	for _, s := range statuses {
		if string(opts.Status) == s {
			return nil
		}
	}
	return usageErrorf("--status %q: want queued, running, succeeded, failed or cancelled", opts.Status)
}

// listAll prints every page: a table flushed page by page, or JSON lines.
func listAll(ctx context.Context, c *client.Client, p *printer, opts client.ListOptions) error {
	var tb *taskTable
	if !p.json {
		tb = p.newTaskTable()
		defer tb.flush()
	}
	n := 0
	for t, err := range c.ListAll(ctx, opts) {
		if err != nil {
			return err
		}
		n++
		if p.json {
			fmt.Fprintf(p.w, "%s\n", taskJSON(t))
			continue
		}
		tb.add(t)
		if n%opts.Limit == 0 {
			tb.flush()
		}
	}
	return nil
}
