package chaos

import (
	"net/http"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

// asyncRun is one async-task row: n tasks submitted to one ferry process
// (embedded store) calling a Backend with behave; during submits, fault
// runs with the process and returns the moment the fault ended (zero: no
// recovery to time).
type asyncRun struct {
	fault, target string
	n             int
	behave        Behaviour
	fnExtra       string
	// dupBound is the duplicates allowed (-1: any, reported).
	dupBound int
	// during breaks things while tasks run; it returns when the (last)
	// fault started and ended (zero: no recovery to time) and a note.
	during func(t *testing.T, p *ferrytest.Proc, l *Ledger) (faultAt, ended time.Time, note string)
}

func (r asyncRun) run(t *testing.T, tab *Table) {
	row := Row{Fault: r.fault, Target: r.target}
	defer func() { tab.Add(row) }()
	l := NewLedger()
	be := NewBackend(l, r.behave)
	defer be.Close()
	p := ferrytest.Start(t, serveConfig(be.URL(), r.fnExtra, ""))
	s := newSubmitter(p, l)
	stop := make(chan struct{})
	submitted := make(chan struct{})
	go func() { defer close(submitted); s.submitAll(0, r.n, 8, stop) }()
	var faultAt, ended time.Time
	if r.during != nil {
		faultAt, ended, row.Note = r.during(t, p, l)
	}
	select {
	case <-submitted:
	case <-time.After(3 * time.Minute):
		close(stop)
		<-submitted
		row.Status = "FAIL: submits not accepted within 3 min"
		t.Error(row.Status)
		return
	}
	if !ended.IsZero() {
		row.Recovery = recovery(l, faultAt, ended, 2*time.Minute)
	}
	settled := settle(l, 2*time.Second, 3*time.Minute)
	if p.Running() {
		p.Term()
	}
	row.Count = l.Count()
	row.Status = verdict(row.Count, r.dupBound, settled)
	if row.Status != "ok" {
		t.Error(row.Status)
	}
}

// deliveredAtLeast waits until k distinct seqs were delivered.
func deliveredAtLeast(l *Ledger, k int) bool {
	return waitUntil(2*time.Minute, func() bool { d, _ := l.Delivered(); return d >= k })
}

// slowly is a backend taking d per call.
func slowly(d time.Duration) Behaviour {
	return func(int, int) (int, time.Duration, int) { return 0, d, 0 }
}

// firstAttempt answers the first attempt of every seq with status after
// delay (and Retry-After retryAfter), and later attempts with success.
func firstAttempt(status int, delay time.Duration, retryAfter int) Behaviour {
	return func(_, try int) (int, time.Duration, int) {
		if try == 1 {
			return status, delay, retryAfter
		}
		return 0, 0, 0
	}
}

// asyncRows are the rows on `ferry serve` with the embedded store; scale
// multiplies their N (the smoke test runs a small one).
func asyncRows(scale float64) []asyncRun {
	n := func(base int) int { return max(20, int(float64(base)*scale)) }
	return []asyncRun{
		{fault: "kill -9 Ferry ×10 in a row", target: "embedded store", n: n(3000), behave: slowly(5 * time.Millisecond),
			// max_concurrency 16 per function: at most 16 in flight per crash.
			dupBound: 10 * 16,
			during: func(t *testing.T, p *ferrytest.Proc, l *Ledger) (time.Time, time.Time, string) {
				var faultAt, ended time.Time
				total := l.Accepted()
				for i := range 10 {
					d, _ := l.Delivered()
					if !deliveredAtLeast(l, d+max(5, total/40)) {
						t.Errorf("kill %d: no progress", i+1)
						break
					}
					faultAt = time.Now()
					p.Kill9()
					p.Restart()
					ended = time.Now()
				}
				return faultAt, ended, "10 kills, each after more deliveries; duplicates bound 10 × 16 in flight"
			}},
		{fault: "SIGTERM under load", target: "embedded store", n: n(2000), behave: slowly(5 * time.Millisecond), dupBound: 0,
			during: func(t *testing.T, p *ferrytest.Proc, l *Ledger) (time.Time, time.Time, string) {
				if !deliveredAtLeast(l, l.Accepted()/4+1) {
					t.Error("no progress before SIGTERM")
				}
				faultAt := time.Now()
				p.Term()
				p.Restart()
				return faultAt, time.Now(), "SIGTERM with tasks running, then restart; duplicates must be 0"
			}},
		{fault: "backend 5xx (first attempt 503)", target: "embedded store", n: n(500), behave: firstAttempt(http.StatusServiceUnavailable, 0, 0), dupBound: 0},
		{fault: "backend 429 + Retry-After: 1", target: "embedded store", n: n(200), behave: firstAttempt(http.StatusTooManyRequests, 0, 1), dupBound: 0},
		{fault: "backend hang (first attempt past the 2 s timeout)", target: "embedded store", n: n(100), behave: firstAttempt(0, time.Minute, 0), dupBound: 0},
		{fault: "backend slow (300 ms per call)", target: "embedded store", n: n(300), behave: slowly(300 * time.Millisecond), dupBound: 0},
	}
}

// notRun lists the matrix rows this harness does not run yet, with why.
var notRun = []Row{
	{Fault: "broker partitioned mid-batch (TCP proxy)", Target: "rocketmq",
		Note: "the broker registers its one address with the name server and RocketMQ 4.9 cannot bind one address and advertise another, so no proxy can sit on its path without moving every other test's broker (Kafka uses a second listener, RabbitMQ and Redis one port)"},
}

func init() {
	for i := range notRun {
		notRun[i].Status = "not run"
	}
}

// localRow is a row that needs no broker: run alone with
// -run 'TestChaos/<name>'.
type localRow struct {
	name string
	run  func(t *testing.T, tab *Table)
}

// localRows are the rows on one `ferry serve` that need no broker and no
// broker restart.
var localRows = []localRow{
	{"store_full", rowStoreFull},
	{"damaged_wal", rowDamagedWAL},
	{"missing_current", rowMissingCurrent},
	{"connection_flood", rowFlood},
	{"webhook_down", rowWebhookDown},
	{"low_gomemlimit", rowLowMemLimit},
	{"noisy_tenant", rowNoisyTenant},
}
