package report

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// metricOrder is the column order of the well-known metrics; other
// metrics follow alphabetically.
var metricOrder = []string{
	"rate_per_s", "tasks_per_s", "submit_per_s", "req_per_s", "msgs_per_s", "invoked_per_s", "received_per_s",
	"s_to_commit", "p50_ms", "p99_ms", "p999_ms", "jain", "small_p99_ms", "big_p99_ms",
	"startup_s", derivedCPUTotal, "cpu_ms_per_1k_ferry", "cpu_ms_per_1k_asynq",
	"cpu_ms_per_1k_redis", "cpu_ms_per_1k_broker", "rss_mb",
}

// metricLabels are the column headers of the well-known metrics.
var metricLabels = map[string]string{
	"rate_per_s":     "offered rate (/s)",
	"tasks_per_s":    "tasks/s",
	"submit_per_s":   "submitted/s",
	"req_per_s":      "requests/s",
	"msgs_per_s":     "msgs/s",
	"invoked_per_s":  "msgs to the function/s",
	"received_per_s": "msgs received/s",
	"s_to_commit":    "time to commit (s)",
	"p50_ms":         "p50 (ms)",
	"p99_ms":         "p99 (ms)",
	"p999_ms":        "p99.9 (ms)",
	"jain":           "Jain index",
	"small_p99_ms":   "small tenants p99 (ms)",
	"big_p99_ms":     "big tenant p99 (ms)",
	"startup_s":      "startup (s)",
	"rss_mb":         "RSS (MB)",
	derivedCPUTotal:  "CPU ms / 1k tasks, all processes",

	"generator_cpu_ms_per_1k":   "load generator CPU ms / 1k tasks",
	"redis_evalsha_per_task":    "Redis EVALSHA / task",
	"redis_evalsha_us_per_task": "Redis EVALSHA µs / task",
	"machine_busy_cores":        "machine busy (cores)",
	"system_cores":              "system (cores)",
	"system_node_max_cores":     "busiest node (cores)",
	"redis_cores":               "Redis (cores)",
	"redis_main_run_pct":        "Redis main thread running (%)",
	"redis_main_wait_pct":       "Redis main thread waiting for a CPU (%)",
	"generator_cores":           "load generator (cores)",
	"other_cores":               "other processes (cores)",
}

// metricLabel returns the human header of metric m; unknown metrics are
// shown as they are named.
func metricLabel(m string) string {
	if l, ok := metricLabels[m]; ok {
		return l
	}
	if p, ok := strings.CutPrefix(m, "cpu_ms_per_1k_"); ok {
		return "CPU ms / 1k tasks, " + p
	}
	return m
}

// sortMetrics orders metric names for the table columns.
func sortMetrics(ms []string) []string {
	rank := func(m string) int {
		for i, o := range metricOrder {
			if o == m {
				return i
			}
		}
		if strings.HasPrefix(m, "cpu_ms_per_1k_") {
			return len(metricOrder) - 1 // other processes, before RSS
		}
		return len(metricOrder)
	}
	out := append([]string(nil), ms...)
	sort.SliceStable(out, func(i, j int) bool {
		ri, rj := rank(out[i]), rank(out[j])
		if ri != rj {
			return ri < rj
		}
		return out[i] < out[j]
	})
	return out
}

// formatMetric renders one value of metric m: rates and sizes as whole
// numbers with thousands separators, durations with 3 significant digits,
// Jain's index with 3 decimals.
func formatMetric(m string, v float64) string {
	switch {
	case !finite(v):
		return "—"
	case m == "jain":
		return strconv.FormatFloat(v, 'f', 3, 64)
	case strings.HasSuffix(m, "_per_s"), m == "rss_mb":
		if math.Abs(v) >= 100 {
			return thousands(math.Round(v))
		}
	}
	return sig3(v)
}

// formatStat renders a median with its min–max spread, e.g.
// "6,012 (5,800–6,150)"; the spread is left out for a single run or when
// it rounds away.
func formatStat(m string, s Stat) string {
	med := formatMetric(m, s.Median)
	lo, hi := formatMetric(m, s.Min), formatMetric(m, s.Max)
	if s.N < 2 || lo == hi {
		return med
	}
	return med + " (" + lo + "–" + hi + ")"
}

// formatRatio renders a ratio with 3 significant digits and a ×.
func formatRatio(r float64) string {
	if !finite(r) {
		return "—"
	}
	return sig3(r) + "×"
}

// sig3 renders v with 3 significant digits, thousands separated.
func sig3(v float64) string {
	if v == 0 || !finite(v) {
		if v == 0 {
			return "0"
		}
		return "—"
	}
	mag := int(math.Floor(math.Log10(math.Abs(v))))
	if mag >= 2 {
		p := math.Pow10(mag - 2)
		return thousands(math.Round(v/p) * p)
	}
	dec := 2 - mag
	s := strconv.FormatFloat(v, 'f', dec, 64)
	// Rounding can add a digit (9.996 → "10.00"); drop the extra decimal.
	if r, err := strconv.ParseFloat(s, 64); err == nil && math.Floor(math.Log10(math.Abs(r))) > float64(mag) && dec > 0 {
		s = strconv.FormatFloat(v, 'f', dec-1, 64)
	}
	return s
}

// thousands renders the integer part of v with comma separators.
func thousands(v float64) string {
	neg := v < 0
	s := strconv.FormatFloat(math.Abs(math.Round(v)), 'f', 0, 64)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// humanCount shortens round integers: 1000 → 1k, 100000 → 100k,
// 1000000 → 1M; anything else is returned unchanged.
func humanCount(s string) string {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 1000 {
		return s
	}
	switch {
	case n%1_000_000_000 == 0:
		return strconv.FormatInt(n/1_000_000_000, 10) + "G"
	case n%1_000_000 == 0:
		return strconv.FormatInt(n/1_000_000, 10) + "M"
	case n%1000 == 0:
		return strconv.FormatInt(n/1000, 10) + "k"
	}
	return s
}

// shortNumber renders a value for a chart label: 12.3k, 1.45M, 14.2.
func shortNumber(v float64) string {
	a := math.Abs(v)
	switch {
	case !finite(v):
		return ""
	case a >= 1e6:
		return sig3(v/1e6) + "M"
	case a >= 1e4:
		return sig3(v/1e3) + "k"
	case a >= 1000:
		return thousands(v)
	}
	return sig3(v)
}

// formatDuration renders a wall-clock duration: "1 h 02 min", "4 min 05 s".
func formatDuration(d time.Duration) string {
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h > 0:
		return fmt.Sprintf("%d h %02d min", h, m)
	case m > 0:
		return fmt.Sprintf("%d min %02d s", m, s)
	}
	return fmt.Sprintf("%d s", s)
}

// mdEscape makes s safe inside a markdown table cell.
func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}
