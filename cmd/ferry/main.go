// Command ferry runs and checks Ferry.
//
//	ferry serve -c ferry.yaml      run the service until SIGINT or SIGTERM
//	ferry validate -c ferry.yaml   check a config: exit 0, or 1 with FILE:LINE: message lines
//	ferry version                  print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ferrydev/ferry"
	"github.com/ferrydev/ferry/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "ferry", version)
		return 0
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "ferry: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  ferry serve -c FILE      run Ferry with the config FILE until SIGINT/SIGTERM
  ferry validate -c FILE   check FILE: exit 0, or 1 with one FILE:LINE: message per problem
  ferry version            print the version
`)
}

func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "ferry.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "ferry %s: unexpected argument %q\n", name, fs.Arg(0))
		return "", false
	}
	return *path, true
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

func validate(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("validate", args, stderr)
	if !ok {
		return 2
	}
	cfg, err := config.Load(path)
	if err != nil {
		printProblems(stdout, path, err)
		return 1
	}
	if len(cfg.Warnings) > 0 {
		fmt.Fprintln(stdout, cfg.Warnings.Error())
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return 0
}

func serve(args []string, stderr io.Writer) int {
	path, ok := configFlag("serve", args, stderr)
	if !ok {
		return 2
	}
	cfg, err := config.Load(path)
	if err != nil {
		printProblems(stderr, path, err)
		return 1
	}
	var opts []ferry.Option
	if v := os.Getenv("FERRY_TEST_CLOCK_OFFSET"); v != "" {
		// For tests only: a node whose clock is off by v.
		off, err := time.ParseDuration(v)
		if err != nil {
			fmt.Fprintf(stderr, "ferry: FERRY_TEST_CLOCK_OFFSET: %v\n", err)
			return 2
		}
		opts = append(opts, ferry.WithClock(func() time.Time { return time.Now().Add(off) }))
	}
	srv, err := ferry.New(cfg, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "ferry: %v\n", err)
		return 1
	}
	return 0
}
