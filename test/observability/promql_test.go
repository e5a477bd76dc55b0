package observability

import (
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The PromQL the dashboard and the alerts use is checked for metric names
// with a careful tokenizer rather than Prometheus's parser (a heavy
// dependency): string literals, Grafana variables, label matchers, range
// and subquery brackets and grouping clauses are removed first; what is
// left of the identifiers, less function calls (a name followed by "(")
// and keywords, are metric names. promtool checks the syntax itself
// (TestDashboardQueriesParse, TestAlertRulesCheck).
var (
	stringLiterals = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	grafanaVars    = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	labelMatchers  = regexp.MustCompile(`\{[^{}]*\}`)
	brackets       = regexp.MustCompile(`\[[^\]]*\]`)
	groupings      = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	// tokens: an identifier, or a number or duration (which starts with a
	// digit or a dot and is skipped whole, e.g. 1e3, 0.5, 10m).
	tokens      = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*|[0-9.][0-9A-Za-z_.]*`)
	labelValues = regexp.MustCompile(`^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$`)
)

// keywords are PromQL's identifiers that are not metric names and are not
// followed by "(" (grouping clauses are removed before).
var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"inf": true, "nan": true,
}

// metricNames returns the metric names expr selects, sorted and without
// repeats. A Grafana variable query label_values(SELECTOR, LABEL) yields
// its selector's metric.
func metricNames(expr string) []string {
	if m := labelValues.FindStringSubmatch(expr); m != nil {
		expr = m[1]
	}
	expr = stringLiterals.ReplaceAllString(expr, `""`)
	expr = grafanaVars.ReplaceAllString(expr, " ")
	expr = labelMatchers.ReplaceAllString(expr, " ")
	expr = brackets.ReplaceAllString(expr, " ")
	expr = groupings.ReplaceAllString(expr, " ")
	var names []string
	for _, loc := range tokens.FindAllStringIndex(expr, -1) {
		tok := expr[loc[0]:loc[1]]
		switch {
		case tok[0] == '.' || (tok[0] >= '0' && tok[0] <= '9'):
			continue
		case keywords[strings.ToLower(tok)]:
			continue
		case strings.HasPrefix(strings.TrimLeft(expr[loc[1]:], " \t\n"), "("):
			continue // a function or an aggregation
		}
		names = append(names, tok)
	}
	sort.Strings(names)
	return slices.Compact(names)
}

// exposition is what a scrape exposes: the names a query can select
// (a histogram's _bucket, _sum and _count, a summary's own name with
// _sum and _count).
type exposition map[string]bool

// parseExposition reads the Prometheus text format.
func parseExposition(r io.Reader) (exposition, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	exp := exposition{}
	for name, f := range families {
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			exp[name+"_bucket"], exp[name+"_sum"], exp[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			exp[name], exp[name+"_sum"], exp[name+"_count"] = true, true, true
		default:
			exp[name] = true
		}
	}
	return exp, nil
}

// missing returns the metric names expr selects that exp does not expose.
func (exp exposition) missing(expr string) []string {
	var out []string
	for _, name := range metricNames(expr) {
		if !exp[name] {
			out = append(out, name)
		}
	}
	return out
}

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`sum by (tenant, function) (rate(ferry_task_outcomes_total{instance=~"$instance", outcome=~"failed:.*"}[$__rate_interval]))`,
			[]string{"ferry_task_outcomes_total"}},
		{`histogram_quantile(0.99, sum by (le, function) (rate(ferry_attempt_duration_seconds_bucket{function=~"${function}"}[5m])))`,
			[]string{"ferry_attempt_duration_seconds_bucket"}},
		{`sum by (code) (label_replace(rate(ferry_task_outcomes_total{outcome=~"failed:.*"}[5m]), "code", "$1", "outcome", "failed:(.*)"))`,
			[]string{"ferry_task_outcomes_total"}},
		{`sum by (kind) (ferry_deliveries_total{result="failed"} unless ferry_deliveries_total{result="failed"} offset 5m) > 0`,
			[]string{"ferry_deliveries_total"}},
		{"ferry_trigger_connected == 0\nor\nsum without (kind) (increase(ferry_trigger_errors_total{kind=~\"read|x{1}\"}[5m])) > 3",
			[]string{"ferry_trigger_connected", "ferry_trigger_errors_total"}},
		{`max by (tenant) (sum without (state) (ferry_queue_depth)) / on (tenant) group_left (x) max by (tenant) (ferry_tenant_max_queued) > 0.8`,
			[]string{"ferry_queue_depth", "ferry_tenant_max_queued"}},
		{`rate (process_cpu_seconds_total[5m:1m]) * 1e3 + Inf > bool NaN and go_goroutines`,
			[]string{"go_goroutines", "process_cpu_seconds_total"}},
		{`label_values(ferry_function_concurrency_limit{instance=~"$instance"}, tenant)`,
			[]string{"ferry_function_concurrency_limit"}},
		{`sum(rate(ferry_made_up_total[5m]))`, []string{"ferry_made_up_total"}},
		{`vector(1)`, nil},
	} {
		if got := metricNames(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("metricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}

// TestMissingReportsUnknownMetrics: the check fails on a name the
// exposition lacks, a made-up one or a histogram's bare name.
func TestMissingReportsUnknownMetrics(t *testing.T) {
	exp, err := parseExposition(strings.NewReader(`# TYPE ferry_x_total counter
ferry_x_total{tenant="a"} 1
# TYPE ferry_h_seconds histogram
ferry_h_seconds_bucket{le="1"} 1
ferry_h_seconds_bucket{le="+Inf"} 1
ferry_h_seconds_sum 0.5
ferry_h_seconds_count 1
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0.5"} 0.001
go_gc_duration_seconds_sum 0.01
go_gc_duration_seconds_count 3
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`rate(ferry_x_total[5m])`, nil},
		{`histogram_quantile(0.5, rate(ferry_h_seconds_bucket[5m])) + ferry_h_seconds_sum / ferry_h_seconds_count`, nil},
		{`rate(go_gc_duration_seconds_sum[5m]) + go_gc_duration_seconds`, nil},
		{`sum(rate(ferry_made_up_total[5m])) + rate(ferry_x_total[5m])`, []string{"ferry_made_up_total"}},
		{`ferry_h_seconds`, []string{"ferry_h_seconds"}},
		{`ferry_x_total_bucket`, []string{"ferry_x_total_bucket"}},
	} {
		if got := exp.missing(tc.expr); !slices.Equal(got, tc.want) {
			t.Errorf("missing(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
}
