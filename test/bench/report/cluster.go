package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Cluster roles, recognized from the system names and the nodes parameter.
func clusterNodes(g *group) int {
	n, err := strconv.Atoi(g.Params["nodes"])
	if err != nil {
		return 0
	}
	return n
}

// clusterGroups returns the peers (asynq) first, then Ferry by node count.
func clusterGroups(gs []*group) []*group {
	out := append([]*group(nil), gs...)
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if fa, fb := isFerry(a.System), isFerry(b.System); fa != fb {
			return fb
		}
		return clusterNodes(a) < clusterNodes(b)
	})
	return out
}

// clusterRatios: every Ferry cluster against asynq (tasks/s, CPU per task
// with Redis's, p99), and the larger clusters against one node. Only one
// node against asynq and three nodes against one are headline figures.
func clusterRatios(gs []*group) []ratio {
	var out []ratio
	peers := filter(gs, isAsynq)
	ferries := filter(clusterGroups(gs), func(g *group) bool { return isFerry(g.System) })
	for _, f := range ferries {
		for _, a := range peers {
			for _, m := range []string{"tasks_per_s", derivedCPUTotal, "p99_ms"} {
				if r, ok := newRatio(f.label()+" / "+a.label(), f, m, a, m); ok {
					r.detail = clusterNodes(f) != 1
					if m == derivedCPUTotal {
						r.Metric = "CPU ms / 1k tasks, system + Redis"
					}
					out = append(out, r)
				}
			}
		}
	}
	var one *group
	for _, f := range ferries {
		if clusterNodes(f) == 1 {
			one = f
		}
	}
	if one != nil {
		for _, f := range ferries {
			if clusterNodes(f) <= 1 {
				continue
			}
			if r, ok := newRatio(f.label()+" / "+one.label(), f, "tasks_per_s", one, "tasks_per_s"); ok {
				r.detail = clusterNodes(f) != 3
				out = append(out, r)
			}
		}
	}
	return out
}

// clusterTable is the cluster section's main table: per system, tasks/s
// and its ratio to asynq, CPU per 1,000 tasks of the system's processes,
// of Redis and of both, and p99 submit → start at half the peak rate.
func clusterTable(gs []*group) string {
	var peer *group
	if ps := filter(gs, isAsynq); len(ps) > 0 {
		peer = ps[0]
	}
	var b strings.Builder
	row(&b, []string{"system", "nodes", "tasks/s", "ratio to asynq", "CPU ms / 1k: system", "CPU ms / 1k: Redis",
		"CPU ms / 1k: total", "p99 submit → start (ms)", "at (tasks/s)", "runs"})
	row(&b, []string{"---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:"})
	cell := func(g *group, m string) string {
		if s, ok := g.Metrics[m]; ok {
			return formatStat(m, s)
		}
		return "—"
	}
	for _, g := range clusterGroups(gs) {
		ratioCell := "—"
		if peer != nil && g != peer {
			if r, ok := newRatio("", g, "tasks_per_s", peer, "tasks_per_s"); ok {
				ratioCell = formatRatio(r.Value)
				if rr := runRange(r); strings.Contains(rr, "–") {
					ratioCell += " (" + rr + ")"
				}
			}
		} else if g == peer {
			ratioCell = "1×"
		}
		sysCPU := "cpu_ms_per_1k_ferry"
		if !isFerry(g.System) {
			sysCPU = "cpu_ms_per_1k_asynq"
		}
		row(&b, []string{g.System, g.Params["nodes"], cell(g, "tasks_per_s"), ratioCell, cell(g, sysCPU),
			cell(g, "cpu_ms_per_1k_redis"), cell(g, derivedCPUTotal), cell(g, "p99_ms"), cell(g, "rate_per_s"),
			fmt.Sprint(g.Runs)})
	}
	return b.String()
}

// clusterShown are the metrics clusterTable and clusterCoresTable show.
var clusterShown = map[string]bool{
	"tasks_per_s": true, "cpu_ms_per_1k_ferry": true, "cpu_ms_per_1k_asynq": true, "cpu_ms_per_1k_redis": true,
	derivedCPUTotal: true, "p99_ms": true, "rate_per_s": true,
	"machine_busy_cores": true, "system_cores": true, "system_node_max_cores": true, "redis_cores": true,
	"redis_main_run_pct": true, "redis_main_wait_pct": true, "generator_cores": true, "other_cores": true,
}

// clusterCoresTable says where the machine's CPUs went during each
// system's closed loop: the machine as a whole (other processes included),
// the system (its busiest node), Redis (and how much of the wall time its
// main thread ran or waited for a CPU), the load generator and the rest.
func clusterCoresTable(gs []*group) string {
	ms := []string{"machine_busy_cores", "system_cores", "system_node_max_cores", "redis_cores",
		"redis_main_run_pct", "redis_main_wait_pct", "generator_cores", "other_cores"}
	var b strings.Builder
	row(&b, []string{"system", "machine busy (cores)", "system (cores)", "busiest node (cores)", "Redis (cores)",
		"Redis main thread running (% of wall)", "Redis main thread waiting for a CPU (% of wall)", "load generator (cores)",
		"other processes (cores)"})
	row(&b, []string{"---", "---:", "---:", "---:", "---:", "---:", "---:", "---:", "---:"})
	n := 0
	for _, g := range clusterGroups(gs) {
		cells := []string{g.System}
		for _, m := range ms {
			if s, ok := g.Metrics[m]; ok {
				cells = append(cells, formatStat(m, s))
				n++
			} else {
				cells = append(cells, "—")
			}
		}
		row(&b, cells)
	}
	if n == 0 {
		return ""
	}
	return b.String()
}
