// Package queuemetrics exports the task queue's depth to Prometheus.
package queuemetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ferrydev/ferry/async"
)

// Collector exports the queue depth per tenant from the queue's
// in-memory counts at scrape time.
type Collector struct {
	q     async.Queue
	depth *prometheus.Desc
}

// New returns the Collector of q (metric ferry_queue_depth{tenant, state}).
func New(q async.Queue) *Collector {
	return &Collector{q: q, depth: prometheus.NewDesc("ferry_queue_depth",
		"Unfinished tasks per tenant and state (queued includes delayed and waiting for retry).",
		[]string{"tenant", "state"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.depth }

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
}
