// Package cluster runs several real `ferry serve` processes on one private
// redis-server (store.redis) and breaks them the ways a cluster breaks:
// a node killed with kill -9, stopped with SIGTERM, frozen with SIGSTOP
// past its leases, a node whose clock runs ahead, Redis itself killed and
// restarted, Redis at maxmemory. Every node is a process of its own (the
// ferry binary built once, with -race, by TestMain); the function they
// call is a recording HTTP backend in the test process.
//
// Each scenario counts as shared/reliability.md says, from a unique
// sequence number in every payload, and logs one line
//
//	N=<accepted> lost=<l> duplicated=<d> unexpected=<u>
//
// plus its own figures. A scenario needs redis-server on PATH: without it
// the test fails when CI=true and is skipped otherwise (test/brokers/up.sh
// installs Redis, so CI has it).
//
// Files: main_test.go (TestMain), harness_test.go (the cluster and its
// nodes), redis_test.go (the redis-server process), backend_test.go (the
// recording backend), client_test.go (submitting, reading back,
// counting), selftest_test.go (the harness checked on one embedded-store
// node); the scenarios are crash_test.go (kill -9, SIGTERM, SIGSTOP),
// limits_test.go (max_concurrency, rate, fairness), redisfault_test.go
// (Redis killed, Redis at maxmemory) and clock_test.go (clocks ahead).
package cluster

import (
	"fmt"
	"os"
	"testing"

	"github.com/ferrydev/ferry/test/ferrytest"
)

func TestMain(m *testing.M) {
	if _, err := ferrytest.Build(); err != nil {
		fmt.Fprintln(os.Stderr, "building ferry:", err)
		os.Exit(1)
	}
	code := m.Run()
	ferrytest.Cleanup()
	os.Exit(code)
}
