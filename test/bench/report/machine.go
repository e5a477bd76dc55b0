package report

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Machine describes the machine a bench ran on. Zero fields are left out
// of the report.
type Machine struct {
	CPUModel   string // "model name" of /proc/cpuinfo
	CPUs       int    // runtime.NumCPU
	GOMAXPROCS int
	MemBytes   uint64 // MemTotal of /proc/meminfo
	Kernel     string // /proc/sys/kernel/osrelease or uname -r
	OS         string // PRETTY_NAME of /etc/os-release
	GoVersion  string // runtime.Version of the bench program
	Arch       string // GOOS/GOARCH
	Date       time.Time
	// Brokers maps a broker or peer to its version, e.g. "redis" → "7.0.15".
	Brokers map[string]string
}

// DescribeMachine reads the machine's CPU, memory, kernel and OS from
// /proc and /etc, and records the broker versions given (name → version).
// What cannot be read is left empty.
func DescribeMachine(brokers map[string]string) Machine {
	m := Machine{
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		Arch:       runtime.GOOS + "/" + runtime.GOARCH,
		Date:       time.Now().UTC(),
		Brokers:    brokers,
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel, _ = parseCPUInfo(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		m.MemBytes = parseMemInfo(string(b))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	} else if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		m.OS = parseOSRelease(string(b))
	}
	return m
}

// parseCPUInfo returns the first "model name" of /proc/cpuinfo and the
// number of "processor" entries.
func parseCPUInfo(s string) (model string, n int) {
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "processor":
			n++
		case "model name", "Model", "cpu model":
			if model == "" {
				model = strings.Join(strings.Fields(v), " ")
			}
		}
	}
	return model, n
}

// parseMemInfo returns MemTotal of /proc/meminfo in bytes.
func parseMemInfo(s string) uint64 {
	for line := range strings.SplitSeq(s, "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// parseOSRelease returns PRETTY_NAME of /etc/os-release.
func parseOSRelease(s string) string {
	for line := range strings.SplitSeq(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "PRETTY_NAME="); ok {
			if u, err := strconv.Unquote(v); err == nil {
				return u
			}
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

// rows returns the machine as label/value pairs for a table.
func (m Machine) rows() [][2]string {
	var rows [][2]string
	add := func(k, v string) {
		if v != "" {
			rows = append(rows, [2]string{k, v})
		}
	}
	cpu := m.CPUModel
	if m.CPUs > 0 {
		n := fmt.Sprintf("%d logical CPUs", m.CPUs)
		if m.GOMAXPROCS > 0 && m.GOMAXPROCS != m.CPUs {
			n += fmt.Sprintf(", GOMAXPROCS %d", m.GOMAXPROCS)
		}
		if cpu != "" {
			cpu += " — " + n
		} else {
			cpu = n
		}
	}
	add("CPU", cpu)
	if m.MemBytes > 0 {
		add("Memory", fmt.Sprintf("%.1f GiB", float64(m.MemBytes)/(1<<30)))
	}
	add("OS", m.OS)
	add("Kernel", m.Kernel)
	goV := m.GoVersion
	if m.Arch != "" && goV != "" {
		goV += " " + m.Arch
	}
	add("Go", goV)
	if !m.Date.IsZero() {
		add("Date", m.Date.UTC().Format("2006-01-02 15:04 MST"))
	}
	names := make([]string, 0, len(m.Brokers))
	for k := range m.Brokers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		add(k, m.Brokers[k])
	}
	return rows
}
