// Package queuemetrics exports the task queue's depth, and each tenant's
// max_queued next to it, to Prometheus.
package queuemetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrydev/ferry/async"
)

// Collector exports the queue depth per tenant from the queue's
// in-memory counts at scrape time, and the tenants' max_queued.
type Collector struct {
	q         async.Queue
	maxQueued map[string]int
	depth     *prometheus.Desc
	limit     *prometheus.Desc
}

// New returns the Collector of q (metric ferry_queue_depth{tenant, state})
// and of the tenants' max_queued, tenant name → limit (metric
// ferry_tenant_max_queued{tenant}). The caller must not change maxQueued
// afterwards.
func New(q async.Queue, maxQueued map[string]int) *Collector {
	return &Collector{q: q, maxQueued: maxQueued,
		depth: prometheus.NewDesc("ferry_queue_depth",
			"Unfinished tasks per tenant and state (queued includes delayed and waiting for retry).",
			[]string{"tenant", "state"}, nil),
		limit: prometheus.NewDesc("ferry_tenant_max_queued",
			"The tenant's max_queued: how many unfinished tasks (queued and running) it may have before submit answers 429.",
			[]string{"tenant"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.depth
	ch <- c.limit
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	type counts struct{ queued, running int }
	per := map[string]*counts{}
	for _, st := range c.q.Stats() {
		n := per[st.Lane.Tenant]
		if n == nil {
			n = &counts{}
			per[st.Lane.Tenant] = n
		}
		n.queued += st.Queued
		n.running += st.Running
	}
	for tenant, n := range per {
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(n.queued), tenant, "queued")
		ch <- prometheus.MustNewConstMetric(c.depth, prometheus.GaugeValue, float64(n.running), tenant, "running")
	}
	for tenant, limit := range c.maxQueued {
		ch <- prometheus.MustNewConstMetric(c.limit, prometheus.GaugeValue, float64(limit), tenant)
	}
}
