package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrydev/ferry"
	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher/backend"
)

// noArgs refuses arguments as the command did before cobra: exit 2 with
// "ferry NAME: unexpected argument".
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("%s: unexpected argument %q", cmd.CommandPath(), args[0])
	}
	return nil
}

func configFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVarP(path, "config", "c", "ferry.yaml", "config file")
	_ = cmd.MarkFlagFilename("config", "yaml", "yml")
}

func newServeCmd(e env) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "serve [-c FILE]",
		Short: "Run Ferry with a config until SIGINT or SIGTERM",
		Long: `Run Ferry with the config FILE: the HTTP API, the task store, the dispatcher,
the triggers and the destinations, until SIGINT or SIGTERM, then shut down
gracefully. A config with problems is not run: exit 1 with one
FILE:LINE: message line per problem on stderr.`,
		Example: "  ferry serve -c config/examples/quickstart.yaml",
		Args:    noArgs,
		RunE:    runE(func(cmd *cobra.Command, _ []string) error { return serve(cmd, path, e.stderr) }),
	}
	configFlag(cmd, &path)
	return cmd
}

func newValidateCmd(e env) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate [-c FILE]",
		Short: "Check a config: exit 0, or 1 with one FILE:LINE: message per problem",
		Long: `Check the config FILE without running it. Prints "FILE: ok" (after any
warnings) and exits 0, or prints one FILE:LINE: message line per problem on
stdout and exits 1.`,
		Example: "  ferry validate -c ferry.yaml",
		Args:    noArgs,
		RunE:    runE(func(*cobra.Command, []string) error { return validate(path, e.stdout) }),
	}
	configFlag(cmd, &path)
	return cmd
}

func newVersionCmd(e env) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Example: "  ferry version",
		Args:    noArgs,
		RunE: runE(func(*cobra.Command, []string) error {
			fmt.Fprintln(e.stdout, "ferry", version)
			return nil
		}),
	}
}

// printProblems prints a config error: one FILE:LINE: message per problem.
func printProblems(w io.Writer, path string, err error) {
	var probs config.Problems
	if errors.As(err, &probs) {
		fmt.Fprintln(w, probs.Error())
		return
	}
	fmt.Fprintf(w, "%s: %v\n", path, err)
}

func validate(path string, stdout io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		printProblems(stdout, path, err)
		return exitSilently(exitFailed)
	}
	if len(cfg.Warnings) > 0 {
		fmt.Fprintln(stdout, cfg.Warnings.Error())
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return nil
}

func serve(cmd *cobra.Command, path string, stderr io.Writer) error {
	cfg, err := config.Load(path)
	if err != nil {
		printProblems(stderr, path, err)
		return exitSilently(exitFailed)
	}
	var opts []ferry.Option
	if v := os.Getenv("FERRY_TEST_CLOCK_OFFSET"); v != "" {
		// For tests only: a node whose clock is off by v.
		off, err := time.ParseDuration(v)
		if err != nil {
			return usageErrorf("FERRY_TEST_CLOCK_OFFSET: %v", err)
		}
		opts = append(opts, ferry.WithClock(func() time.Time { return time.Now().Add(off) }))
	}
	srv, err := ferry.New(cfg, opts...)
	if err != nil {
		return err
	}
	if usesExec(cfg) {
		// Orphans of exec functions come back to Ferry, are killed with
		// their run and reaped (no zombies when Ferry is PID 1 either).
		ctx, cancel := context.WithCancel(cmd.Context())
		defer cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := backend.ReapOrphans(ctx); err != nil {
				fmt.Fprintf(stderr, "ferry: %v (orphans of exec functions go to init)\n", err)
			}
		}()
		defer func() { cancel(); <-done }()
	}
	ctx := cmd.Context()
	done := make(chan struct{})
	defer close(done)
	go watchShutdown(ctx, done, cfg, stderr)
	return srv.Run(ctx)
}

// closeGrace is what a shutdown may take beyond server.shutdown_timeout
// (the drain) to close the store and the destinations.
const closeGrace = 3 * time.Second

// watchShutdown ends the process (status 1, one ERROR line) when Run has
// not returned within shutdown_timeout + closeGrace of ctx ending: a
// shutdown waits for no wedged store or broker for ever. It returns when
// done is closed.
func watchShutdown(ctx context.Context, done <-chan struct{}, cfg *config.Config, stderr io.Writer) {
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	limit := cfg.Server.ShutdownTimeout.D() + closeGrace
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		ferry.NewLogger(cfg.Log, stderrFile(stderr)).Error("shutdown did not finish in time: exiting without closing what is left", "limit", limit.String())
		os.Exit(1)
	}
}

// stderrFile is w when it is a file, else os.Stderr.
func stderrFile(w io.Writer) *os.File {
	if f, ok := w.(*os.File); ok {
		return f
	}
	return os.Stderr
}

// usesExec reports whether a function of cfg runs an exec backend.
func usesExec(cfg *config.Config) bool {
	for _, f := range cfg.Functions {
		if f.Backend.Exec != nil {
			return true
		}
	}
	return false
}
