package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrydev/ferry/client"
)

// submitFlags are submit's own flags.
type submitFlags struct {
	data        string
	file        string
	delay       time.Duration
	key         string
	contentType string
	wait        bool
	timeout     time.Duration
}

func newSubmitCmd(e env) *cobra.Command {
	var sf submitFlags
	cmd := &cobra.Command{
		Use:   "submit FN (--data JSON|@FILE|- | --file TASKS.jsonl)",
		Short: "Submit a task, or many from a JSON-lines file",
		Long: `Submit one task of the function FN with --data, or many with --file.

--data JSON is the payload itself; --data @FILE reads it from FILE;
--data - reads it from stdin. It is sent as application/json when it is
valid JSON, else as application/octet-stream (--content-type overrides).
The task is printed as Ferry stored it. With --wait, submit then waits for
the task to finish (at most --timeout, when given), prints it, and exits 1
when it failed or was cancelled.

--file TASKS.jsonl (or - for stdin) submits one task per line through the
batch endpoint, in requests of up to 1000 tasks. Each line is one batch
item: {"payload": <any JSON>} or {"payload_base64": "..."}, with optional
"idempotency_key" and "delay" (e.g. "30s"). Blank lines are skipped. Every
line is checked before anything is sent: a malformed one is a usage error
(exit 2) naming FILE:LINE, and nothing is submitted. A progress bar shows
on stderr when stderr is a terminal. The summary (accepted, refused, the
first refusals by line) goes to stdout; with --output json, stdout has one
JSON line per line of the file instead (the task, or {"line": N, "error":
{...}}) and the summary goes to stderr. Exit 1 when any task was refused.`,
		Example: `  ferry submit echo --data '{"hello":"world"}'
  ferry submit echo --data @order.json --idempotency-key order-42 --delay 30s
  echo '{"n":1}' | ferry submit echo --data - --wait --timeout 1m
  ferry submit echo --file tasks.jsonl --output json > results.jsonl`,
		Args: exactArgs(1, "the function name"),
	}
	cf := newClientFlags(e, cmd)
	fl := cmd.Flags()
	fl.StringVarP(&sf.data, "data", "d", "", "the payload: JSON, @FILE, or - for stdin")
	fl.StringVarP(&sf.file, "file", "f", "", "submit one task per line of this JSON-lines file (- for stdin)")
	fl.DurationVar(&sf.delay, "delay", 0, "run the task no sooner than this from now, e.g. 30s (with --data)")
	fl.StringVar(&sf.key, "idempotency-key", "", "the same key within 24 h gives the same task (with --data)")
	fl.StringVar(&sf.contentType, "content-type", "", "the payload's media type (with --data; default: detected)")
	fl.BoolVarP(&sf.wait, "wait", "w", false, "wait for the task to finish and print it; exit 1 if it failed (with --data)")
	fl.DurationVar(&sf.timeout, "timeout", 0, "with --wait: give up after this long (default: no limit)")
	_ = cmd.MarkFlagFilename("file", "jsonl", "json")
	cmd.MarkFlagsMutuallyExclusive("data", "file")
	cmd.MarkFlagsOneRequired("data", "file")
	cmd.RunE = runE(func(cmd *cobra.Command, args []string) error {
		if err := sf.check(cmd); err != nil {
			return err
		}
		c, p, err := cf.client(cmd)
		if err != nil {
			return err
		}
		if sf.file != "" {
			return submitFile(cmd.Context(), e, c, p, args[0], sf.file)
		}
		return submitOne(cmd.Context(), e, c, p, args[0], sf)
	})
	return cmd
}

// exactArgs wants n arguments, named what for the message.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < n:
			return usageErrorf("%s needs %s", cmd.CommandPath(), what)
		case len(args) > n:
			return usageErrorf("%s: unexpected argument %q", cmd.CommandPath(), args[n])
		}
		return nil
	}
}

// check refuses flags that do not go together.
func (sf *submitFlags) check(cmd *cobra.Command) error {
	if sf.file != "" {
		for _, name := range []string{"delay", "idempotency-key", "content-type", "wait", "timeout"} {
			if cmd.Flags().Changed(name) {
				return usageErrorf("--%s goes with --data; with --file, give \"delay\" and \"idempotency_key\" per line", name)
			}
		}
		return nil
	}
	if sf.delay < 0 {
		return usageErrorf("--delay %s is negative", sf.delay)
	}
	if cmd.Flags().Changed("timeout") && !sf.wait {
		return usageErrorf("--timeout goes with --wait")
	}
	return nil
}

// readData reads --data: the payload itself, @FILE, or - for stdin.
func readData(e env, data string) ([]byte, error) {
	switch {
	case data == "-":
		b, err := io.ReadAll(e.stdin)
		if err != nil {
			return nil, fmt.Errorf("--data -: reading stdin: %w", err)
		}
		return b, nil
	case strings.HasPrefix(data, "@"):
		b, err := os.ReadFile(data[1:])
		if err != nil {
			return nil, fmt.Errorf("--data %s: %w", data, err)
		}
		return b, nil
	}
	return []byte(data), nil
}

func submitOne(ctx context.Context, e env, c *client.Client, p *printer, fn string, sf submitFlags) error {
	payload, err := readData(e, sf.data)
	if err != nil {
		return err
	}
	t, err := c.Submit(ctx, fn, payload, client.SubmitOptions{
		IdempotencyKey: sf.key, Delay: sf.delay, ContentType: sf.contentType,
	})
	if err != nil {
		return err
	}
	if !sf.wait {
		p.task(t)
		return nil
	}
	waitCtx := ctx
	if sf.timeout > 0 {
		var cancel context.CancelFunc
		waitCtx, cancel = context.WithTimeout(ctx, sf.timeout)
		defer cancel()
	}
	done, err := c.Wait(waitCtx, t.ID)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("task %s did not finish within %s (it is still queued or running: ferry tasks get %s)", t.ID, sf.timeout, t.ID)
		}
		return err
	}
	p.task(done)
	if done.Status != client.StatusSucceeded {
		return exitSilently(exitFailed)
	}
	return nil
}
