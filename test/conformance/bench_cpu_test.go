package conformance_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/<pid>/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// cpuMeter measures the CPU time two processes spend between its start
// and read: this benchmark process (Ferry or the raw consumer, plus the
// benchmark's own polling) and the broker (pid 0: unknown, not measured).
type cpuMeter struct {
	brokerPID          int
	self, broker       time.Duration
	selfErr, brokerErr error
}

// startCPU starts measuring this process and the broker's.
func startCPU(brokerPID int) *cpuMeter {
	m := &cpuMeter{brokerPID: brokerPID}
	m.self, m.selfErr = processCPU(os.Getpid())
	if brokerPID > 0 {
		m.broker, m.brokerErr = processCPU(brokerPID)
	}
	return m
}

// read returns the CPU time each process spent since startCPU, -1 for a
// process that could not be measured.
func (m *cpuMeter) read() (self, broker time.Duration) {
	self, broker = -1, -1
	if now, err := processCPU(os.Getpid()); err == nil && m.selfErr == nil {
		self = now - m.self
	}
	if m.brokerPID > 0 && m.brokerErr == nil {
		if now, err := processCPU(m.brokerPID); err == nil {
			broker = now - m.broker
		}
	}
	return self, broker
}

// processCPU is the user plus system CPU time of pid so far.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// fields 14 and 15 (utime, stime) count from after its ")".
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// listenerPID is the pid of the local process listening on addr's TCP
// port (any local address), found through the socket's inode in
// /proc/net/tcp{,6} and the /proc/<pid>/fd links.
func listenerPID(addr string) (int, error) {
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return 0, err
	}
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if err := listeningInodes(table, uint16(port), inodes); err != nil {
			return 0, err
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on port %d", port)
	}
	links, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, l := range links {
		target, err := os.Readlink(l)
		if err != nil || !strings.HasPrefix(target, "socket:[") {
			continue
		}
		if inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] {
			return strconv.Atoi(strings.Split(l, "/")[2])
		}
	}
	return 0, fmt.Errorf("no process holds the socket listening on port %d", port)
}

// listeningInodes adds to inodes the inode of every socket in table (a
// /proc/net/tcp file) listening on port.
func listeningInodes(table string, port uint16, inodes map[string]bool) error {
	f, err := os.Open(table)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	want := fmt.Sprintf(":%04X", port)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// sl local_address rem_address st ... uid timeout inode
		f := strings.Fields(sc.Text())
		if len(f) > 9 && strings.HasSuffix(f[1], want) && f[3] == "0A" { // 0A: LISTEN
			inodes[f[9]] = true
		}
	}
	return sc.Err()
}
