package poller

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPartitionLagSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg).trigger("orders")
	if n := testutil.CollectAndCount(reg, "ferry_trigger_lag"); n != 0 {
		t.Errorf("%d ferry_trigger_lag series before the lag is known, want none (not 0)", n)
	}
	m.setPartitionLag(map[string]int64{"0": 3, "1": 4, "2": 0})
	if got := testutil.ToFloat64(m.lag.WithLabelValues("orders")); got != 7 {
		t.Errorf("ferry_trigger_lag = %v, want the sum 7", got)
	}
	if n := testutil.CollectAndCount(reg, "ferry_trigger_partition_lag"); n != 3 {
		t.Errorf("%d partition series, want 3", n)
	}
	// Partitions that are gone (a RocketMQ topic with fewer queues) lose their series.
	m.setPartitionLag(map[string]int64{"1": 2})
	if n := testutil.CollectAndCount(reg, "ferry_trigger_partition_lag"); n != 1 {
		t.Errorf("%d partition series after the rebalance, want 1", n)
	}
	if got := testutil.ToFloat64(m.partLag.WithLabelValues("orders", "1")); got != 2 {
		t.Errorf("partition 1 lag = %v, want 2", got)
	}
	// A broker that cannot tell: no lag, rather than a stale one or 0.
	m.unknownLag()
	if n := testutil.CollectAndCount(reg, "ferry_trigger_lag") + testutil.CollectAndCount(reg, "ferry_trigger_partition_lag"); n != 0 {
		t.Errorf("%d lag series after the lag became unknown, want none", n)
	}
	var none *triggerMetrics
	none.unknownLag()
	none.setPartitionLag(map[string]int64{"0": 1}) // no metrics: records nothing, no panic
}
