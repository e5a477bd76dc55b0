// Package observability tests the Grafana dashboard (docs/grafana-dashboard.json)
// and the Prometheus alerting rules (docs/alerts.yaml): promtool checks and
// unit-tests the rules and parses the dashboard's queries, and every metric
// either queries is one a real Ferry exports on /metrics.
package observability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ferrydev/ferry"
	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/dispatcher"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/kafkatest"
	"github.com/ferrydev/ferry/wire"
)

var (
	alertsFile     = filepath.Join("..", "..", "docs", "alerts.yaml")
	alertTestsFile = filepath.Join("..", "..", "docs", "alerts_test.yaml")
	dashboardFile  = filepath.Join("..", "..", "docs", "grafana-dashboard.json")
)

// The alerts docs/alerts.yaml must define.
var wantAlerts = []string{
	"FerryFunctionFailureRate", "FerryLoopsDetected", "FerryTriggerLagGrowing",
	"FerryTriggerBrokerUnreachable", "FerryDeliveriesFailing", "FerryQueueNearMaxQueued",
	"FerryStoreNearFull",
}

// promtool returns promtool's path. Without it the test fails under CI=true
// (make test installs it: test/tools/up.sh) and is skipped otherwise.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("promtool is not installed (test/tools/up.sh promtool installs it)")
	}
	t.Skip("promtool is not installed; skipping (test/tools/up.sh promtool installs it)")
	return ""
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestAlertRulesCheck(t *testing.T) { runPromtool(t, "check", "rules", alertsFile) }

func TestAlertRulesUnitTests(t *testing.T) { runPromtool(t, "test", "rules", alertTestsFile) }

// TestDashboardQueriesParse: promtool checks the dashboard's queries, as
// recording rules, with Grafana's variables replaced by values.
func TestDashboardQueriesParse(t *testing.T) {
	bin := promtool(t)
	vars := strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h",
		"$instance", ".*", "$tenant", ".*", "$function", ".*", "$trigger", ".*")
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, q := range dashboardQueries(t, readDashboard(t)) {
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard_query_%d", i), Expr: vars.Replace(q.expr)})
	}
	doc, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yaml")
	if err := os.WriteFile(file, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "check", "rules", file).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules (the dashboard's queries): %v\n%s", err, out)
	}
}

// alertRule is one rule of docs/alerts.yaml.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func readAlerts(t *testing.T) []alertRule {
	t.Helper()
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name  string      `yaml:"name"`
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	var rules []alertRule
	for _, g := range doc.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

// TestAlertRulesShape: every wanted alert is there, with for:, a severity
// and summary, description and runbook annotations naming its labels.
func TestAlertRulesShape(t *testing.T) {
	rules := readAlerts(t)
	var names []string
	for _, r := range rules {
		names = append(names, r.Alert)
		if r.Alert == "" {
			t.Errorf("a rule without alert: (expr %q)", r.Expr)
			continue
		}
		if r.For == "" {
			t.Errorf("%s: no for:", r.Alert)
		}
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
		}
		for _, a := range []string{"summary", "description", "runbook"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		if !strings.Contains(r.Annotations["summary"]+r.Annotations["description"], "$labels.") {
			t.Errorf("%s: neither summary nor description names a label ({{ $labels.x }})", r.Alert)
		}
	}
	for _, w := range wantAlerts {
		if !slices.Contains(names, w) {
			t.Errorf("alert %s is missing from %s", w, alertsFile)
		}
	}
}

// TestAlertUnitTestsCoverEveryAlert: docs/alerts_test.yaml evaluates every
// alert at least once where it fires and once where it does not.
func TestAlertUnitTestsCoverEveryAlert(t *testing.T) {
	data, err := os.ReadFile(alertTestsFile)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", alertTestsFile, err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range doc.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, r := range readAlerts(t) {
		if !fires[r.Alert] || !quiet[r.Alert] {
			t.Errorf("%s: %s tests it firing: %v, not firing: %v; want both", r.Alert, alertTestsFile, fires[r.Alert], quiet[r.Alert])
		}
	}
}

// dashboard is the part of the Grafana dashboard model the tests read.
type dashboard struct {
	SchemaVersion int      `json:"schemaVersion"`
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	Panels        []*panel `json:"panels"`
	Templating    struct {
		List []struct {
			Type       string          `json:"type"`
			Name       string          `json:"name"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []*panel `json:"panels"` // a collapsed row's
}

func readDashboard(t *testing.T) *dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return &d
}

// panels returns the dashboard's panels, rows' panels included, rows not.
func (d *dashboard) panels() (rows []string, out []*panel) {
	var walk func([]*panel)
	walk = func(ps []*panel) {
		for _, p := range ps {
			if p.Type == "row" {
				rows = append(rows, p.Title)
				walk(p.Panels)
				continue
			}
			out = append(out, p)
		}
	}
	walk(d.Panels)
	return rows, out
}

// query is one PromQL expression and where it comes from.
type query struct{ where, expr string }

// dashboardQueries returns the queries of the dashboard's panels and
// template variables.
func dashboardQueries(t *testing.T, d *dashboard) []query {
	t.Helper()
	var qs []query
	_, ps := d.panels()
	for _, p := range ps {
		for _, tg := range p.Targets {
			qs = append(qs, query{fmt.Sprintf("dashboard panel %q (%s)", p.Title, tg.RefID), tg.Expr})
		}
	}
	return qs
}

// variableQueries returns the label_values queries of the dashboard's
// query variables.
func variableQueries(t *testing.T, d *dashboard) []query {
	t.Helper()
	var qs []query
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var obj struct{ Query string }
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				t.Fatalf("variable %s: query %s: %v", v.Name, v.Query, err)
			}
			q = obj.Query
		}
		qs = append(qs, query{fmt.Sprintf("dashboard variable %s", v.Name), q})
	}
	return qs
}

// TestDashboardShape: the dashboard parses, has its rows and variables,
// and every panel queries the datasource variable.
func TestDashboardShape(t *testing.T) {
	d := readDashboard(t)
	if d.SchemaVersion < 36 || d.UID == "" || d.Title == "" {
		t.Errorf("schemaVersion %d, uid %q, title %q; want schemaVersion >= 36, a uid and a title", d.SchemaVersion, d.UID, d.Title)
	}
	rows, ps := d.panels()
	if want := []string{"Overview", "Failures", "Triggers", "Deliveries", "Process"}; !slices.Equal(rows, want) {
		t.Errorf("rows %q, want %q", rows, want)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		for _, p := range append([]*panel{p}, p.Panels...) {
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("panel %q: id %d is 0 or not unique", p.Title, p.ID)
			}
			ids[p.ID] = true
		}
	}
	for _, p := range ps {
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want prometheus ${datasource}", p.Title, p.Datasource)
		}
		n := 0
		for _, tg := range p.Targets {
			if strings.TrimSpace(tg.Expr) != "" {
				n++
			}
		}
		if n == 0 || n != len(p.Targets) {
			t.Errorf("panel %q: %d of its %d targets have a query; want every one, and at least one", p.Title, n, len(p.Targets))
		}
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" {
		t.Errorf("no datasource variable of type datasource: %v", vars)
	}
	labelVars := map[string]bool{}
	for _, q := range variableQueries(t, d) {
		if labelValues.MatchString(q.expr) {
			labelVars[strings.TrimPrefix(q.where, "dashboard variable ")] = true
		}
	}
	for _, v := range []string{"tenant", "function", "trigger"} {
		if !labelVars[v] {
			t.Errorf("no %s variable of type query with label_values(...)", v)
		}
	}
}

// TestQueriedMetricsExist: every metric the dashboard and the alerts query
// is one a real Ferry exports. The Ferry runs in-process on an embedded
// store, with a Go function, a log destination, a Redis Streams trigger
// whose broker does not answer and a Kafka trigger on the real broker; one task succeeds, one is refused
// as a loop and one waits, so that every vector has series.
func TestQueriedMetricsExist(t *testing.T) {
	qs := dashboardQueries(t, readDashboard(t))
	qs = append(qs, variableQueries(t, readDashboard(t))...)
	for _, r := range readAlerts(t) {
		qs = append(qs, query{"alert " + r.Alert, r.Expr})
	}
	if len(qs) < len(wantAlerts)+20 {
		t.Fatalf("only %d queries found", len(qs))
	}

	base, stop := startFerry(t)
	defer stop()
	ok := submit(t, base, nil)
	loop := submit(t, base, map[string]string{wire.HeaderHops: "99"})
	submit(t, base, map[string]string{"Ferry-Delay": "1h"})
	waitStatus(t, base, ok, "succeeded")
	waitStatus(t, base, loop, "failed")

	// Deliveries and trigger errors come a little after: scrape until
	// nothing is missing, or report what still is.
	var missing []string
	var exp exposition
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		exp = scrape(t, base)
		missing = missing[:0]
		for _, q := range qs {
			for _, name := range exp.missing(q.expr) {
				missing = append(missing, fmt.Sprintf("%s: %s is not a metric Ferry exports", q.where, name))
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, m := range missing {
		t.Error(m)
	}
}

const apiKey = "obs-key"

// startFerry runs a Ferry in-process and returns its base URL.
func startFerry(t *testing.T) (string, func()) {
	t.Helper()
	// A Kafka trigger on the real broker, for its lag per partition.
	brokers.Require(t, "kafka")
	kafkaTopic := kafkatest.New().CreateTopic(t, 2)
	cfg, err := config.Parse("observability.yaml", []byte(`
server: { listen: "127.0.0.1:0" }
store: { embedded: { path: `+t.TempDir()+` } }
tenants: [ { name: obs, api_keys: [`+apiKey+`], max_queued: 1000 } ]
functions:
  - name: echo
    tenant: obs
    backend: { go: {} }
    destinations: { on_success: [ { log: {} } ] }
triggers:
  - name: orders
    function: echo
    source: { redis: { url: "redis://127.0.0.1:1/0", stream: orders, group: ferry } }
  - name: events
    function: echo
    source: `+kafkaTopic.SourceYAML("ferry-obs")+`
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	echo := dispatcher.BackendFunc(func(_ context.Context, inv *dispatcher.Invocation) (*dispatcher.Result, error) {
		return &dispatcher.Result{Output: inv.Payload}, nil
	})
	s, err := ferry.New(cfg, ferry.WithFunction("obs", "echo", echo),
		ferry.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	base := "http://" + s.Addr().String()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if res, err := http.Get(base + "/readyz"); err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("ferry not ready within 10s")
		}
	}
	return base, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ferry Run: %v", err)
		}
	}
}

// submit submits a task to echo with the given headers and returns its id.
func submit(t *testing.T, base string, headers map[string]string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/functions/echo/tasks", strings.NewReader(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct{ ID string }
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusAccepted {
		t.Fatalf("submit: %s, %v; want 202 with an id", res.Status, err)
	}
	return body.ID
}

// waitStatus waits until the task has the status.
func waitStatus(t *testing.T, base, id, status string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/tasks/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Status string }
		err = json.NewDecoder(res.Body).Decode(&body)
		_ = res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if last = body.Status; last == status {
			return
		}
	}
	t.Fatalf("task %s is %q after 15s, want %q", id, last, status)
}

// scrape reads the Ferry's /metrics.
func scrape(t *testing.T, base string) exposition {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v", res.Status, err)
	}
	exp, err := parseExposition(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	return exp
}
