package dispatcher

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/ferrydev/ferry/async"
)

// Standard returns the middleware every function's backend runs behind, in
// order (the first runs first): Recover turns a panic into an error,
// metrics observe every attempt, the loop guard refuses over-deep chains
// before anything else happens, and Timeout bounds the attempt.
// Concurrency limits are taken before the work is pulled (see Limits), and
// retries are decided on the result (see RetryPolicy), so neither is a
// middleware.
func Standard(m *Metrics, maxHops int, timeout time.Duration) []Middleware {
	return []Middleware{Recover(), m.Observe(), LoopGuard(maxHops), Timeout(timeout)}
}

// Timeout bounds each attempt (d <= 0: no bound).
func Timeout(d time.Duration) Middleware {
	return func(next Backend) Backend {
		if d <= 0 {
			return next
		}
		return BackendFunc(func(ctx context.Context, inv *Invocation) (*Result, error) {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next.Invoke(ctx, inv)
		})
	}
}

// LoopGuard refuses an invocation whose hop count has reached maxHops: the
// backend is not called and the error is a permanent loop_detected.
func LoopGuard(maxHops int) Middleware {
	return func(next Backend) Backend {
		return BackendFunc(func(ctx context.Context, inv *Invocation) (*Result, error) {
			if maxHops > 0 && inv.Hops >= maxHops {
				return nil, Permanent(async.CodeLoopDetected,
					fmt.Errorf("%w: hop count %d reached loop_guard.max_hops %d", ErrLoopDetected, inv.Hops, maxHops))
			}
			return next.Invoke(ctx, inv)
		})
	}
}

// Recover turns a panic in the backend into a retryable *PanicError naming
// the file and line of the panic.
func Recover() Middleware {
	return func(next Backend) Backend {
		return BackendFunc(func(ctx context.Context, inv *Invocation) (res *Result, err error) {
			defer func() {
				if v := recover(); v != nil {
					res, err = nil, Retryable("panic", &PanicError{Value: v, Where: panicSite()}, 0)
				}
			}()
			return next.Invoke(ctx, inv)
		})
	}
}

// panicSite returns file:line of the frame that panicked: the first frame
// below runtime.gopanic that is not in the runtime.
func panicSite() string {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") {
			return fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		if !more {
			return "unknown"
		}
	}
}
