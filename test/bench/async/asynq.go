package async

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// asynqDB is the Redis database asynq runs on; it is flushed before every
// asynq run, and no other database is touched.
const asynqDB = 15

// asynqConcurrency is asynq's Config.Concurrency here (its default is the
// CPU count: 2), and the Ferry dispatcher's workers.
const asynqConcurrency = 64

// asynqPool is the asynq server's Redis pool: its 64 workers each mark
// their task done on a connection of their own.
const asynqPool = asynqConcurrency + 16

// asynqSpec describes an asynq under test.
type asynqSpec struct {
	name  string        // "asynq (default)", "asynq (tuned 10ms)"
	check time.Duration // Config.TaskCheckInterval
}

// asynqSystems are asynq at its default TaskCheckInterval and at its best
// tuned one (shared/bench.md: 1 s → p99 1.45 s, 10 ms → 14 ms at 1k/s).
var asynqSystems = []asynqSpec{
	{name: "asynq (default)", check: time.Second},
	{name: "asynq (tuned 10ms)", check: 10 * time.Millisecond},
}

// params are the settings of s for a Result.
func (s asynqSpec) params() map[string]string {
	return map[string]string{
		"task_check_interval": s.check.String(),
		"concurrency":         strconv.Itoa(asynqConcurrency),
		"redis_pool":          strconv.Itoa(asynqPool),
	}
}

// flushAsynqDB empties asynq's Redis database.
func flushAsynqDB(ctx context.Context, addr string) error {
	c := redis.NewClient(&redis.Options{Addr: addr, DB: asynqDB})
	defer c.Close()
	if err := c.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("FLUSHDB %d on %s: %w", asynqDB, addr, err)
	}
	return nil
}

// asynqd is a running asynq worker child.
type asynqd struct {
	*proc
	starts *remoteStarts
	insp   *asynq.Inspector
}

// startAsynq flushes asynq's database and starts a worker.
func startAsynq(ctx context.Context, redisAddr string, s asynqSpec) (*asynqd, error) {
	if err := flushAsynqDB(ctx, redisAddr); err != nil {
		return nil, err
	}
	p, err := startChild(ctx, time.Minute, roleAsynq, "-redis", redisAddr, "-db", strconv.Itoa(asynqDB),
		"-concurrency", strconv.Itoa(asynqConcurrency), "-pool", strconv.Itoa(asynqPool), "-check", s.check.String())
	if err != nil {
		return nil, err
	}
	return &asynqd{
		proc:   p,
		starts: newRemoteStarts(p.addrs.Stats),
		insp:   asynq.NewInspector(asynq.RedisClientOpt{Addr: redisAddr, DB: asynqDB}),
	}, nil
}

// waitDone waits until n tasks have started, then until the default queue
// is empty (every task marked done and deleted: asynq keeps no completed
// tasks without Retention), and returns when it saw that.
func (a *asynqd) waitDone(ctx context.Context, n int, timeout time.Duration) (time.Time, error) {
	if err := waitStarts(ctx, a.starts, n, timeout); err != nil {
		return time.Time{}, fmt.Errorf("asynq: %w", err)
	}
	err := waitFor(ctx, time.Minute, 5*time.Millisecond, func() (bool, string, error) {
		q, err := a.insp.GetQueueInfo("default")
		if err != nil {
			return false, "", fmt.Errorf("asynq queue info: %w", err)
		}
		return q.Size == 0, fmt.Sprintf("%d tasks left in the queue (%d active, %d retry)", q.Size, q.Active, q.Retry), nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("asynq: %w", err)
	}
	return time.Now(), nil
}

func (a *asynqd) stop() error {
	a.starts.close()
	_ = a.insp.Close()
	return a.proc.stop()
}
