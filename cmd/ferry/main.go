// Command ferry runs Ferry and talks to it.
//
//	ferry serve -c ferry.yaml      run the service until SIGINT or SIGTERM
//	ferry validate -c ferry.yaml   check a config: exit 0, or 1 with FILE:LINE: message lines
//	ferry version                  print the version
//	ferry submit FN --data JSON    submit a task (--file tasks.jsonl: many; --wait: its outcome)
//	ferry tasks get|list|cancel|replay
//	ferry tail FN                  print the outcomes of FN's tasks as they finish
//	ferry completion bash|zsh|fish
//
// The client commands take --url (FERRY_URL), --key (FERRY_API_KEY) and
// --output table|json. Exit codes: 0 ok, 1 a failed request or task, 2 a
// usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	// The IANA time zone database, embedded: timer triggers' time zones
	// load on a machine without /usr/share/zoneinfo too.
	_ "time/tzdata"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // a request or a task failed
	exitUsage  = 2 // the command line is wrong
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args with the process's stdin and environment
// until SIGINT or SIGTERM, and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runCLI(ctx, env{stdin: os.Stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, isTerminal: isTerminal}, args)
}

// env is what a command sees of its process; tests give their own.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// isTerminal reports whether w is a terminal (the bulk submit's
	// progress bar shows only then).
	isTerminal func(w io.Writer) bool
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// exitError ends a command with an exit code; err (if any) is printed to
// stderr.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageErrorf is a usage error (exit 2) with a message.
func usageErrorf(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// exitSilently ends the command with code; what it had to say is printed.
func exitSilently(code int) error { return &exitError{code: code} }

// runE marks the errors of a command's run as failures (exit 1) unless
// they carry their own code. Errors cobra finds before a command runs (an
// unknown flag or command, a wrong argument count) are usage errors.
func runE(f func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := f(cmd, args)
		var ee *exitError
		if err == nil || errors.As(err, &ee) {
			return err
		}
		return &exitError{code: exitFailed, err: err}
	}
}

// runCLI runs one command line and returns its exit code.
func runCLI(ctx context.Context, e env, args []string) int {
	root := newRoot(e)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code := exitUsage
	var ee *exitError
	if errors.As(err, &ee) {
		code, err = ee.code, ee.err
	}
	if err != nil {
		msg := err.Error()
		if !strings.HasPrefix(msg, "ferry") {
			msg = "ferry: " + msg
		}
		fmt.Fprintln(e.stderr, msg)
		if code == exitUsage && cmd != nil {
			fmt.Fprintf(e.stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return code
}

// newRoot builds the command tree.
func newRoot(e env) *cobra.Command {
	root := &cobra.Command{
		Use:   "ferry",
		Short: "Ferry: durable async tasks and broker triggers for your functions",
		Long: `Ferry runs functions from async tasks and broker messages: it stores every
task durably, runs it within per-tenant limits, retries it, and delivers its
outcome to destinations.

serve and validate run and check a Ferry; submit, tasks and tail talk to one
over HTTP API v1 (--url or FERRY_URL, --key or FERRY_API_KEY).

Exit codes: 0 ok; 1 a request failed, or a task failed (submit --wait);
2 a usage error (unknown command or flag, missing argument, bad value).`,
		Example: `  ferry serve -c config/examples/quickstart.yaml
  ferry submit echo --data '{"hello":"world"}' --wait --key demo-key
  ferry tasks list --status failed
  ferry completion bash > /etc/bash_completion.d/ferry`,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(e.stderr)
			_ = cmd.Usage()
			return exitSilently(exitUsage)
		},
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: exitUsage, err: err}
	})
	root.AddCommand(
		newServeCmd(e), newValidateCmd(e), newVersionCmd(e),
		newSubmitCmd(e), newTasksCmd(e), newTailCmd(e),
	)
	root.InitDefaultCompletionCmd()
	addCompletionExamples(root)
	return root
}

// addCompletionExamples gives cobra's completion commands examples.
func addCompletionExamples(root *cobra.Command) {
	examples := map[string]string{
		"completion": "  ferry completion bash > /etc/bash_completion.d/ferry\n  source <(ferry completion zsh)",
		"bash":       "  source <(ferry completion bash)\n  ferry completion bash > /etc/bash_completion.d/ferry",
		"zsh":        "  source <(ferry completion zsh)\n  ferry completion zsh > \"${fpath[1]}/_ferry\"",
		"fish":       "  ferry completion fish | source\n  ferry completion fish > ~/.config/fish/completions/ferry.fish",
		"powershell": "  ferry completion powershell | Out-String | Invoke-Expression",
	}
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		c.Example = examples["completion"]
		for _, sub := range c.Commands() {
			sub.Example = examples[sub.Name()]
		}
	}
}
