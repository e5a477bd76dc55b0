package async

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/hibiken/asynq"

	"github.com/ferrydev/ferry"
	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
)

// Child roles: the systems under test, each in a process of its own so that
// its CPU and memory are its own.
const (
	roleFerry = "ferryd" // Ferry on a config file, no-op Go backends
	roleAsynq = "asynqd" // an asynq.Server with a no-op handler
)

// Child runs a child process role when args (os.Args[1:]) name one
// ("ferryd ...", "asynqd ...") and reports whether it did; main calls it
// first and returns when it reports true. A failing child prints its error
// and exits with status 1. The roles serve until SIGTERM or SIGINT; they
// print one JSON line with their addresses on stdout once serving, and
// answer GET /count and /samples on their stats address.
func Child(args []string) bool {
	if len(args) == 0 {
		return false
	}
	var err error
	switch args[0] {
	case roleFerry:
		err = runFerryd(args[1:])
	case roleAsynq:
		err = runAsynqd(args[1:])
	default:
		return false
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", args[0], err)
		os.Exit(1)
	}
	return true
}

// runFerryd runs Ferry on -config with a no-op Go backend for every
// function whose backend is go. The backend records its start and returns
// an empty output.
func runFerryd(args []string) (err error) {
	fs := flag.NewFlagSet(roleFerry, flag.ContinueOnError)
	cfgPath := fs.String("config", "", "Ferry config file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile at exit to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			err = errors.Join(err, f.Close())
		}()
	}
	if *memProfile != "" {
		defer func() { err = errors.Join(err, writeProfile("allocs", *memProfile)) }()
	}

	rec := &recorder{}
	noop := dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		rec.record(inv.Tenant, inv.Payload)
		return &dispatcher.Result{}, nil
	})
	opts := []ferry.Option{ferry.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))}
	for _, f := range cfg.Functions {
		if f.Backend.Go != nil {
			opts = append(opts, ferry.WithFunction(f.Tenant, f.Name, noop))
		}
	}
	statsAddr, closeStats, err := serve(rec)
	if err != nil {
		return err
	}
	defer closeStats()
	srv, err := ferry.New(cfg, opts...)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	if err := announce(childAddrs{API: srv.Addr().String(), Stats: statsAddr}); err != nil {
		stop()
		return errors.Join(err, <-done)
	}
	return <-done
}

// runAsynqd runs an asynq.Server on Redis with a no-op handler that
// records its start.
func runAsynqd(args []string) error {
	fs := flag.NewFlagSet(roleAsynq, flag.ContinueOnError)
	addr := fs.String("redis", "127.0.0.1:6379", "Redis address")
	db := fs.Int("db", asynqDB, "Redis database")
	concurrency := fs.Int("concurrency", 64, "asynq Config.Concurrency")
	pool := fs.Int("pool", 0, "Redis pool size (0: go-redis's default, 10 per CPU)")
	check := fs.Duration("check", time.Second, "asynq Config.TaskCheckInterval")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	rec := &recorder{}
	statsAddr, closeStats, err := serve(rec)
	if err != nil {
		return err
	}
	defer closeStats()
	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: *addr, DB: *db, PoolSize: *pool}, asynq.Config{
		Concurrency:       *concurrency,
		TaskCheckInterval: *check,
		Queues:            map[string]int{"default": 1},
		ShutdownTimeout:   5 * time.Second,
		LogLevel:          asynq.WarnLevel,
	})
	err = srv.Start(asynq.HandlerFunc(func(_ context.Context, t *asynq.Task) error {
		rec.record("", t.Payload())
		return nil
	}))
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	if err := announce(childAddrs{Stats: statsAddr}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// writeProfile writes the named runtime/pprof profile to path.
func writeProfile(name, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(pprof.Lookup(name).WriteTo(f, 0), f.Close())
}
