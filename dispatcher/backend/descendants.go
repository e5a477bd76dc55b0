package backend

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// EnvRun is the variable that marks every process of one exec run: Ferry
// sets it to a random value in the command's environment, descendants
// inherit it, and when the run ends (exit or timeout) Ferry kills every
// process that carries the value, including those that left the process
// group (setsid) or were reparented (a double fork). A process that clears
// its environment (env -i) escapes the mark; only the process group kill
// and, under `ferry serve`, the orphan reaper see it.
const EnvRun = "FERRY_RUN"

// maxKillRounds bounds the scans of one run's end: a process may fork
// while the scan kills its siblings, so the scan repeats until it finds
// nothing.
const maxKillRounds = 8

// newRunTag returns a fresh random run mark.
func newRunTag() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// killTagged sends SIGKILL to every process whose environment holds
// EnvRun=tag and which started no earlier than since (clock ticks after
// boot; 0: any), scanning /proc until a scan finds none. It returns the
// pids it killed. It is best effort: processes it cannot read (another
// user's, when Ferry is not root) are not seen.
func killTagged(tag string, since uint64) []int {
	needle := []byte("\x00" + EnvRun + "=" + tag + "\x00")
	self := os.Getpid()
	var killed []int
	for range maxKillRounds {
		found := 0
		for _, pid := range procPids() {
			if pid == self {
				continue
			}
			st, ok := readStat(pid)
			if !ok || st.state == 'Z' || st.start < since {
				continue
			}
			env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
			if err != nil || !hasEnv(env, needle) {
				continue
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				found++
				killed = append(killed, pid)
			}
		}
		if found == 0 {
			break
		}
	}
	return killed
}

// hasEnv reports whether the NUL-separated environment env holds the
// entry needle ("\x00KEY=VALUE\x00").
func hasEnv(env, needle []byte) bool {
	framed := make([]byte, 0, len(env)+2)
	framed = append(append(append(framed, 0), env...), 0)
	return bytes.Contains(framed, needle)
}

// procPids lists the pids in /proc.
func procPids() []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat is what Ferry reads of /proc/PID/stat.
type procStat struct {
	state byte
	ppid  int
	start uint64 // clock ticks after boot
}

// readStat reads /proc/pid/stat.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	return parseStat(string(b))
}

// parseStat parses the text of /proc/PID/stat: "pid (comm) state ppid ...",
// where comm may hold spaces and parentheses, and starttime is field 22.
func parseStat(s string) (procStat, bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return procStat{}, false
	}
	f := strings.Fields(s[i+2:])
	// f[0] is field 3 (state); starttime, field 22, is f[19].
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	start, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{state: f[0][0], ppid: ppid, start: start}, true
}

var errNoStat = errors.New("no /proc stat")

// startTime returns when pid started, in clock ticks after boot.
func startTime(pid int) (uint64, error) {
	st, ok := readStat(pid)
	if !ok {
		return 0, errNoStat
	}
	return st.start, nil
}

// killOrphans ends a run that exited normally while this process is the
// child subreaper (ReapOrphans runs): whatever of the run survived its
// leader was reparented to this process, so only this process's children
// are read, not all of /proc. A killed orphan's own children come back to
// this process in turn, so it repeats until a round kills nothing. It
// reports false when the children lists cannot be read
// (CONFIG_PROC_CHILDREN): the caller then scans /proc.
func killOrphans(tag string) bool {
	needle := []byte("\x00" + EnvRun + "=" + tag + "\x00")
	for range maxKillRounds {
		kids, ok := ownChildren()
		if !ok {
			return false
		}
		var killed []int
		for _, pid := range kids {
			if isLive(pid) {
				continue
			}
			env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
			if err != nil || !hasEnv(env, needle) {
				continue
			}
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				killed = append(killed, pid)
			}
		}
		if len(killed) == 0 {
			return true
		}
		// Their children are reparented once they have exited.
		for _, pid := range killed {
			waitExited(pid, 100*time.Millisecond)
		}
	}
	return true
}

// ownChildren lists this process's children from
// /proc/self/task/*/children; ok is false when no list can be read.
func ownChildren() (pids []int, ok bool) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, false
	}
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		ok = true
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids, ok
}

// waitExited polls until pid is a zombie or gone, for at most limit.
func waitExited(pid int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if st, ok := readStat(pid); !ok || st.state == 'Z' {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
