package dashboard

import (
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrydev/ferry/async"
	"github.com/ferrydev/ferry/config"
	"github.com/ferrydev/ferry/wire"
)

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		name   string
		h      histogram
		q      float64
		want   float64
		wantOK bool
	}{
		{"Empty", histogram{}, 0.5, 0, false},
		{"NoObservations", histogram{bounds: []float64{1, inf}, counts: []float64{0, 0}}, 0.5, 0, false},
		{"InFirstBucket", histogram{bounds: []float64{1, 2, inf}, counts: []float64{4, 4, 4}}, 0.5, 0.5, true},
		{"Interpolated", histogram{bounds: []float64{1, 2, inf}, counts: []float64{0, 10, 10}}, 0.5, 1.5, true},
		{"InInfGivesHighestBound", histogram{bounds: []float64{1, 2, inf}, counts: []float64{0, 0, 3}}, 0.99, 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.h.quantile(tt.q)
			if ok != tt.wantOK || math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("quantile(%v) = %v, %v; want %v, %v", tt.q, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	t.Run("MinusLeavesTheInterval", func(t *testing.T) {
		later := histogram{bounds: []float64{1, 2, inf}, counts: []float64{5, 5, 7}}
		earlier := histogram{bounds: []float64{1, 2, inf}, counts: []float64{5, 5, 5}}
		if got, _ := later.minus(earlier).quantile(0.5); got != 2 {
			t.Fatalf("p50 of the 2 later observations (both above 2) = %v, want 2", got)
		}
	})
}

// fixture is a registry with two tenants' metrics, a clock the test moves
// and queue counts it sets.
type fixture struct {
	reg      *prometheus.Registry
	outcomes *prometheus.CounterVec
	wait     *prometheus.HistogramVec
	messages *prometheus.CounterVec
	partLag  *prometheus.GaugeVec
	lag      *prometheus.GaugeVec
	now      time.Time
	stats    []async.LaneStats
	sampler  *Sampler
	handler  http.Handler
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{reg: prometheus.NewRegistry(), now: time.Unix(1_700_000_000, 0)}
	f.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_task_outcomes_total"}, []string{"tenant", "function", "outcome"})
	f.wait = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ferry_task_queue_wait_seconds", Buckets: []float64{0.01, 0.1, 1}}, []string{"tenant", "function"})
	f.messages = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ferry_trigger_messages_total"}, []string{"trigger", "event"})
	f.partLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_trigger_partition_lag"}, []string{"trigger", "partition"})
	f.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ferry_trigger_lag"}, []string{"trigger"})
	f.reg.MustRegister(f.outcomes, f.wait, f.messages, f.partLag, f.lag)
	f.sampler = NewSampler(f.reg, func() []async.LaneStats { return f.stats }, func() time.Time { return f.now })
	cfg := &config.Config{
		Server: config.Server{AdminKeys: []string{"adm"}},
		Tenants: []config.Tenant{
			{Name: "a", APIKeys: []string{"ka"}, MaxConcurrency: 5, MaxQueued: 100},
			{Name: "b", APIKeys: []string{"kb"}, MaxConcurrency: 5, MaxQueued: 100},
		},
		Functions: []config.Function{{Name: "f", Tenant: "a", MaxConcurrency: 3}, {Name: "g", Tenant: "b", MaxConcurrency: 3}},
		Triggers:  []config.Trigger{{Name: "orders", Function: "f", Source: config.Source{Kafka: &config.KafkaSource{}}}},
	}
	auth := async.NewAuth(map[string][]string{"a": {"ka"}, "b": {"kb"}}, "adm")
	mux := http.NewServeMux()
	New(cfg, auth, f.sampler).Register(mux)
	f.handler = mux
	return f
}

func (f *fixture) get(t *testing.T, key, path string) (int, Stats) {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	var s Stats
	if rec.Code == http.StatusOK {
		if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
	}
	return rec.Code, s
}

func TestStats(t *testing.T) {
	f := newFixture(t)
	if code, _ := f.get(t, "ka", "/v1/stats"); code != http.StatusServiceUnavailable {
		t.Fatalf("before the first sample: %d, want 503", code)
	}
	f.sampler.Sample()
	// 30 s later: 6 successes and 2 failures of a/f, a queue of 4.
	f.now = f.now.Add(30 * time.Second)
	f.outcomes.WithLabelValues("a", "f", "succeeded").Add(6)
	f.outcomes.WithLabelValues("a", "f", "failed:http_400").Add(2)
	f.outcomes.WithLabelValues("b", "g", "succeeded").Add(1)
	for range 9 {
		f.wait.WithLabelValues("a", "f").Observe(0.05)
	}
	f.wait.WithLabelValues("a", "f").Observe(0.5)
	f.stats = []async.LaneStats{{Lane: wire.Lane{Tenant: "a", Function: "f"}, Queued: 4, Running: 1}}
	f.messages.WithLabelValues("orders", "consumed").Add(10)
	f.lag.WithLabelValues("orders").Set(5)
	f.partLag.WithLabelValues("orders", "0").Set(5)
	f.partLag.WithLabelValues("orders", "1").Set(0)
	f.sampler.Sample()

	tests := []struct {
		name, key, path string
		status          int
		functions       []string
	}{
		{"NoKey", "", "/v1/stats", 401, nil},
		{"UnknownKey", "zz", "/v1/stats", 401, nil},
		{"TenantSeesItsOwn", "ka", "/v1/stats", 200, []string{"a/f"}},
		{"OtherTenantSeesItsOwn", "kb", "/v1/stats", 200, []string{"b/g"}},
		{"TenantCannotAskForAnother", "ka", "/v1/stats?tenant=b", 404, nil},
		{"AdminSeesAll", "adm", "/v1/stats", 200, []string{"a/f", "b/g"}},
		{"AdminPicksOne", "adm", "/v1/stats?tenant=b", 200, []string{"b/g"}},
		{"AdminUnknownTenant", "adm", "/v1/stats?tenant=zz", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, s := f.get(t, tt.key, tt.path)
			if code != tt.status {
				t.Fatalf("status %d, want %d", code, tt.status)
			}
			var got []string
			for _, fs := range s.Functions {
				got = append(got, fs.Tenant+"/"+fs.Function)
			}
			if len(got) != len(tt.functions) || (len(got) > 0 && got[0] != tt.functions[0]) || len(s.Tenants) != len(tt.functions) {
				t.Fatalf("functions %v (tenants %v), want %v", got, s.Tenants, tt.functions)
			}
		})
	}

	t.Run("Figures", func(t *testing.T) {
		_, s := f.get(t, "ka", "/v1/stats")
		fs := s.Functions[0]
		// 30 s into the first minute: the counts of that minute, not
		// extrapolated to 12 and 4 a minute.
		if fs.SucceededPerMin != 6 || fs.FailedPerMin != 2 || fs.Succeeded15m != 6 || fs.Failed15m != 2 {
			t.Errorf("rates %v/%v, totals %v/%v; want 6/2 and 6/2", fs.SucceededPerMin, fs.FailedPerMin, fs.Succeeded15m, fs.Failed15m)
		}
		if fs.Queued != 4 || fs.Running != 1 || s.Tenants[0].Queued != 4 {
			t.Errorf("queued %v running %v tenant queued %v; want 4, 1, 4", fs.Queued, fs.Running, s.Tenants[0].Queued)
		}
		if fs.WaitP50Ms == nil || *fs.WaitP50Ms < 10 || *fs.WaitP50Ms > 100 || fs.WaitP99Ms == nil || *fs.WaitP99Ms < 100 {
			t.Errorf("wait p50 %v p99 %v; want p50 within (10, 100] ms and p99 above 100 ms", fs.WaitP50Ms, fs.WaitP99Ms)
		}
		if len(s.Triggers) != 1 {
			t.Fatalf("triggers %+v, want orders", s.Triggers)
		}
		tr := s.Triggers[0]
		if tr.Tenant != "a" || tr.Kind != "kafka" || tr.ConsumedPerMin != 10 || tr.Lag == nil || *tr.Lag != 5 ||
			tr.LagByPartition["0"] != 5 || len(tr.LagByPartition) != 2 {
			t.Errorf("trigger %+v: want tenant a, kafka, 10 consumed a minute, lag 5 on partition 0 of 2", tr)
		}
		if _, s := f.get(t, "kb", "/v1/stats"); len(s.Triggers) != 0 {
			t.Errorf("tenant b sees tenant a's trigger: %+v", s.Triggers)
		}
		if fs.RunP50Ms != nil {
			t.Errorf("run p50 = %v with no attempts, want null", *fs.RunP50Ms)
		}
		// 30 s is two history points' worth: one point (15 s and more since the start).
		if len(fs.Series.T) != 1 || fs.Series.Values["succeeded_per_min"][0] != 12 {
			t.Errorf("series %+v, want one point of 12 a minute", fs.Series)
		}
	})

	t.Run("HistoryKeeps15Minutes", func(t *testing.T) {
		for range 2 * historyPoints {
			f.now = f.now.Add(pointEvery)
			f.outcomes.WithLabelValues("a", "f", "succeeded").Inc()
			f.sampler.Sample()
		}
		_, s := f.get(t, "ka", "/v1/stats")
		fs := s.Functions[0]
		if len(fs.Series.T) != historyPoints {
			t.Fatalf("%d points, want %d", len(fs.Series.T), historyPoints)
		}
		if fs.Succeeded15m != historyPoints-1 {
			t.Errorf("succeeded in 15 min = %v, want %d (one per point after the first)", fs.Succeeded15m, historyPoints-1)
		}
		if fs.SucceededPerMin != 4 {
			t.Errorf("succeeded per minute = %v, want 4 (one each 15 s)", fs.SucceededPerMin)
		}
	})
}

func TestPageServed(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/ui/", "/ui/app.js", "/ui/app.css"} {
		rec := httptest.NewRecorder()
		f.handler.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != 200 || rec.Body.Len() == 0 || rec.Header().Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s = %d, %d bytes, CSP %q", path, rec.Code, rec.Body.Len(), rec.Header().Get("Content-Security-Policy"))
		}
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/stats", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /v1/stats = %d, want 405", rec.Code)
	}
}
