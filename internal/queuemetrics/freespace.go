package queuemetrics

import "github.com/prometheus/client_golang/prometheus"

// FreeSpacer is a store on local disk that keeps a free-space reserve
// (the embedded store).
type FreeSpacer interface {
	// FreeBytes is the free space of the store's filesystem and the
	// reserve below which submits are refused.
	FreeBytes() (free, reserve uint64)
	// Full reports whether the free space is below the reserve.
	Full() bool
}

// FreeSpace exports a FreeSpacer's figures at scrape time:
// ferry_store_free_bytes, ferry_store_min_free_bytes and ferry_store_full
// (1 while submits are refused with 507 store_full).
type FreeSpace struct {
	s               FreeSpacer
	free, min, full *prometheus.Desc
}

// NewFreeSpace returns the collector of s.
func NewFreeSpace(s FreeSpacer) *FreeSpace {
	return &FreeSpace{s: s,
		free: prometheus.NewDesc("ferry_store_free_bytes", "Free space on the embedded store's filesystem.", nil, nil),
		min:  prometheus.NewDesc("ferry_store_min_free_bytes", "The free-space reserve (store.embedded.min_free) below which submits answer 507 store_full.", nil, nil),
		full: prometheus.NewDesc("ferry_store_full", "1 while the embedded store is below its free-space reserve and refuses submits, else 0.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *FreeSpace) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.free
	ch <- c.min
	ch <- c.full
}

// Collect implements prometheus.Collector.
func (c *FreeSpace) Collect(ch chan<- prometheus.Metric) {
	full := 0.0
	if c.s.Full() {
		full = 1
	}
	free, reserve := c.s.FreeBytes()
	ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(free))
	ch <- prometheus.MustNewConstMetric(c.min, prometheus.GaugeValue, float64(reserve))
	ch <- prometheus.MustNewConstMetric(c.full, prometheus.GaugeValue, full)
}
