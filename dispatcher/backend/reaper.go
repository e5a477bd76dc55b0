package backend

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER (linux/prctl.h).
const prSetChildSubreaper = 36

// reapInterval is how often ReapOrphans looks for orphans when no SIGCHLD
// came.
const reapInterval = time.Second

// subreaping counts the running ReapOrphans: while one runs, orphans of
// exec runs are this process's children.
var subreaping atomic.Int32

// children are the exec backend's own children, which os/exec waits for:
// the orphan reaper must never wait for one of them.
var children = struct {
	// spawn is held for reading from a child's start until it is in live,
	// and for writing while the reaper reaps, so the reaper never sees a
	// child that is started but not yet known.
	spawn sync.RWMutex
	mu    sync.Mutex
	live  map[int]struct{}
}{live: map[int]struct{}{}}

// ReapOrphans makes the process a child subreaper (PR_SET_CHILD_SUBREAPER)
// until ctx ends: a process an exec function left behind (its parent died)
// is reparented to Ferry instead of to init, so Ferry can kill it with its
// run (see EnvRun), and ReapOrphans reaps it when it exits, so no zombies
// pile up. It only waits for children that the exec backend did not start
// itself (os/exec waits for those), so it must only run in a program whose
// other children, if any, are waited for by nobody else: `ferry serve`
// runs it. It blocks until ctx ends, then stops being a subreaper.
func ReapOrphans(ctx context.Context) error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return fmt.Errorf("exec backend: becoming a child subreaper: %w", errno)
	}
	defer syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 0, 0)
	subreaping.Add(1)
	defer subreaping.Add(-1)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGCHLD)
	defer signal.Stop(sig)
	tick := time.NewTicker(reapInterval)
	defer tick.Stop()
	for {
		reapOrphans()
		select {
		case <-ctx.Done():
			reapOrphans()
			return nil
		case <-sig:
		case <-tick.C:
		}
	}
}

// reapOrphans waits for every exited child of this process that the exec
// backend did not start itself, and returns how many it reaped.
func reapOrphans() int {
	children.spawn.Lock()
	defer children.spawn.Unlock()
	self := os.Getpid()
	n := 0
	for _, pid := range procPids() {
		st, ok := readStat(pid)
		if !ok || st.ppid != self || st.state != 'Z' || isLive(pid) {
			continue
		}
		var ws syscall.WaitStatus
		if got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); err == nil && got == pid {
			n++
		}
	}
	return n
}

func isLive(pid int) bool {
	children.mu.Lock()
	defer children.mu.Unlock()
	_, ok := children.live[pid]
	return ok
}

// startChild starts cmd and records its pid as the exec backend's own
// child (see children) until forget.
func startChild(start func() error, pid func() int) error {
	children.spawn.RLock()
	defer children.spawn.RUnlock()
	if err := start(); err != nil {
		return err
	}
	children.mu.Lock()
	children.live[pid()] = struct{}{}
	children.mu.Unlock()
	return nil
}

// forget drops pid from the exec backend's children once it was waited for.
func forget(pid int) {
	children.mu.Lock()
	delete(children.live, pid)
	children.mu.Unlock()
}
