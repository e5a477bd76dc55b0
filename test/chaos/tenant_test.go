package chaos

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/ferrytest"
)

// noisyBase is where the noisy tenant's seqs start.
const noisyBase = 1_000_000

// waits records, per seq, when its submit was answered 202 and when its
// first invocation started.
type waits struct {
	mu             sync.Mutex
	accepted, seen map[int]time.Time
}

func (w *waits) mark(m map[int]time.Time, seq int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := m[seq]; !ok {
		m[seq] = time.Now()
	}
}

// p99 is the 99th percentile wait (202 → first call) of seqs [from, to)
// that were accepted.
func (w *waits) p99(from, to int) (time.Duration, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var d []time.Duration
	for seq := from; seq < to; seq++ {
		a, ok := w.accepted[seq]
		s, ok2 := w.seen[seq]
		if ok && ok2 {
			d = append(d, max(0, s.Sub(a)))
		}
	}
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	return d[(len(d)*99+99)/100-1], len(d)
}

// paced submits seq, seq+1, ... to fn as tenant key at rate per second
// for d; it returns the next seq.
func paced(p *ferrytest.Proc, l *Ledger, w *waits, fn, key string, seq int, rate float64, d time.Duration, workers int) int {
	var next atomic.Int64
	next.Store(int64(seq))
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	every := time.Duration(float64(time.Second) * float64(workers) / rate)
	for range workers {
		wg.Go(func() {
			tick := time.NewTicker(every)
			defer tick.Stop()
			for time.Now().Before(end) {
				s := int(next.Add(1) - 1)
				req, _ := http.NewRequest(http.MethodPost, p.URL("/v1/functions/"+fn+"/tasks"), bytes.NewReader(payload(s)))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				if resp, err := postClient.Do(req); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusAccepted {
						w.mark(w.accepted, s)
						l.Accept(s)
					}
				}
				<-tick.C
			}
		})
	}
	wg.Wait()
	return int(next.Load())
}

// rowNoisyTenant: the quiet tenant's p99 wait (202 → first call) alone,
// then while a noisy tenant submits at 100× its rate.
func rowNoisyTenant(t *testing.T, tab *Table) {
	row := Row{Fault: "noisy tenant at 100× the others' rate", Target: "embedded store, dispatcher.workers 16"}
	defer func() { tab.Add(row) }()
	l := NewLedger()
	w := &waits{accepted: map[int]time.Time{}, seen: map[int]time.Time{}}
	be := NewBackend(l, func(seq, try int) (int, time.Duration, int) {
		if try == 1 {
			w.mark(w.seen, seq)
		}
		return 0, 20 * time.Millisecond, 0
	})
	defer be.Close()
	fn := func(name, tenant string) string {
		return fmt.Sprintf(`  - name: %s
    tenant: %s
    backend: { http: { url: %q, timeout: 2s } }
    max_concurrency: 16
`, name, tenant, be.URL())
	}
	p := ferrytest.Start(t, `dispatcher: { workers: 16 }
tenants:
  - { name: quiet, api_keys: [chaos-key-q001] }
  - { name: noisy, api_keys: [chaos-key-n001] }
functions:
`+fn("fq", "quiet")+fn("fn", "noisy"))
	const quietRate, phase = 10.0, 15 * time.Second
	base := paced(p, l, w, "fq", "chaos-key-q001", 0, quietRate, phase, 1)
	var noisyEnd int
	var wg sync.WaitGroup
	noisyStart := time.Now()
	wg.Go(func() { noisyEnd = paced(p, l, w, "fn", "chaos-key-n001", noisyBase, 100*quietRate, phase, 16) })
	loaded := paced(p, l, w, "fq", "chaos-key-q001", base, quietRate, phase, 1)
	wg.Wait()
	noisyRate := float64(noisyEnd-noisyBase) / time.Since(noisyStart).Seconds()
	settled := settle(l, 2*time.Second, 3*time.Minute)
	p.Term()
	alone, na := w.p99(0, base)
	mixed, nm := w.p99(base, loaded)
	noisyP99, _ := w.p99(noisyBase, noisyEnd)
	row.Count = l.Count()
	row.Status = verdict(row.Count, 0, settled)
	ratio := float64(mixed) / float64(max(alone, time.Microsecond))
	if row.Status == "ok" && ratio > 1.2 {
		row.Status = fmt.Sprintf("FAIL: quiet p99 %.1f× its baseline (promise 1.2×)", ratio)
	}
	row.Note = fmt.Sprintf("quiet tenant %g/s: p99 wait (202 → first call) alone %s (%d tasks), with the noisy tenant %s (%d tasks) = %.2f× baseline; noisy tenant submitted %.0f/s (aimed 1000/s), its p99 wait %s; backend 20 ms, so with all 16 workers busy a quiet task waits up to one call for a free worker (no preemption)",
		quietRate, alone.Round(100*time.Microsecond), na, mixed.Round(100*time.Microsecond), nm, ratio, noisyRate, noisyP99.Round(time.Millisecond))
	if row.Status != "ok" {
		t.Error(row.Status)
	}
}
