package chaos

import (
	"bytes"
	"fmt"
	"io"
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

// count is how many of seqs [from, to) were accepted.
func (w *waits) count(from, to int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for seq := from; seq < to; seq++ {
		if _, ok := w.accepted[seq]; ok {
			n++
		}
	}
	return n
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
					_, _ = io.Copy(io.Discard, resp.Body) // drained, so the connection is reused
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
// beside a noisy tenant that stays within its quota (rate 10/s,
// max_concurrency 4), and beside the same tenant offering 100× its quota.
// The promise compares the last with the quiet tenant's baseline, the
// service as it runs when every tenant keeps to its quota.
func rowNoisyTenant(t *testing.T, tab *Table) {
	row := Row{Fault: "noisy tenant at 100× its quota (rate 10/s)", Target: "embedded store, dispatcher.workers 16"}
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
	const quota = 10.0
	p := ferrytest.Start(t, fmt.Sprintf(`dispatcher: { workers: 16 }
tenants:
  - { name: quiet, api_keys: [chaos-key-q001] }
  - { name: noisy, api_keys: [chaos-key-n001], rate: %g, burst: %d, max_concurrency: 4 }
functions:
`, quota, int(quota))+fn("fq", "quiet")+fn("fn", "noisy"))
	const quietRate, phase = 20.0, 15 * time.Second
	// phaseWith runs the quiet tenant for one phase beside the noisy
	// tenant offering rate (0: absent) and returns the quiet seqs' end,
	// the noisy seqs' end and the noisy tenant's offered rate.
	quietSeq, noisySeq := 0, noisyBase
	phaseWith := func(rate float64, workers int) (int, int, float64) {
		from, nFrom := quietSeq, noisySeq
		var wg sync.WaitGroup
		start := time.Now()
		if rate > 0 {
			wg.Go(func() { noisySeq = paced(p, l, w, "fn", "chaos-key-n001", nFrom, rate, phase, workers) })
		}
		quietSeq = paced(p, l, w, "fq", "chaos-key-q001", from, quietRate, phase, 1)
		wg.Wait()
		return quietSeq, noisySeq, float64(noisySeq-nFrom) / time.Since(start).Seconds()
	}
	aloneEnd, _, _ := phaseWith(0, 0)
	quotaEnd, noisyFrom, _ := phaseWith(quota, 1)
	loadedEnd, noisyEnd, offered := phaseWith(100*quota, 16)
	settled := settle(l, 2*time.Second, 3*time.Minute)
	p.Term()
	alone, na := w.p99(0, aloneEnd)
	base, nb := w.p99(aloneEnd, quotaEnd)
	mixed, nm := w.p99(quotaEnd, loadedEnd)
	c := l.Count()
	// The noisy tenant's refused submits (429) were never accepted: only
	// its accepted tasks are in the ledger.
	row.Count = c
	row.Status = verdict(c, 0, settled)
	ratio := float64(mixed) / float64(max(base, time.Microsecond))
	if row.Status == "ok" && ratio > 1.2 {
		row.Status = fmt.Sprintf("FAIL: quiet p99 %.2f× its baseline (promise 1.2×)", ratio)
	}
	accepted := w.count(noisyFrom, noisyEnd)
	row.Note = fmt.Sprintf("quiet tenant %g/s, p99 wait (202 → first call): alone %s (%d tasks); baseline, the noisy tenant at its quota %s (%d); the noisy tenant offering %.0f/s (100× its quota of %g/s; %d accepted in that phase, the rest 429) %s (%d) = %.2f× the baseline (%.2f× alone); backend 20 ms",
		quietRate, alone.Round(10*time.Microsecond), na, base.Round(10*time.Microsecond), nb, offered, quota, accepted, mixed.Round(10*time.Microsecond), nm, ratio, float64(mixed)/float64(max(alone, time.Microsecond)))
	if row.Status != "ok" {
		t.Error(row.Status)
	}
}
