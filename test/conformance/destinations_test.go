package conformance_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferrydev/ferry/poller"
	"github.com/ferrydev/ferry/poller/pollertest"
	"github.com/ferrydev/ferry/poller/pollertest/sources"
	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/kafkatest"
	"github.com/ferrydev/ferry/test/brokers/rabbitmqtest"
	"github.com/ferrydev/ferry/test/brokers/redisstreamtest"
	"github.com/ferrydev/ferry/test/conformance"
	"github.com/ferrydev/ferry/test/ferrytest"
	"github.com/ferrydev/ferry/wire"
)

// destTopic is a topic that can also be a Ferry destination.
type destTopic interface {
	conformance.Topic
	// DestinationYAML is the topic as a destination, in flow style.
	DestinationYAML() string
}

// everyBroker runs scenario against each real broker, one after the other
// (the scenarios stop brokers).
func everyBroker(t *testing.T, scenario func(t *testing.T, b conformance.Broker)) {
	for _, b := range []conformance.Broker{kafkatest.New(), rabbitmqtest.New(), redisstreamtest.New(), sources.RocketMQBroker()} {
		t.Run(b.Name(), func(t *testing.T) {
			brokers.Require(t, b.Name())
			ferrytest.Binary(t)
			scenario(t, b)
		})
	}
}

// echoBackend is an HTTP function that answers with its request body and
// records the Ferry-Hops header of every call.
type echoBackend struct {
	srv  *httptest.Server
	mu   sync.Mutex
	hops []string
}

func newEchoBackend(t *testing.T) *echoBackend {
	e := &echoBackend{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.hops = append(e.hops, r.Header.Get("Ferry-Hops"))
		e.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *echoBackend) calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.hops...)
}

// TestLoopGuardOnEveryBroker: a trigger on T runs F whose on_success
// destination is T. The chain stops at exactly max_hops invocations, the
// last event is loop_detected at the on_failure destination, and nothing
// keeps running afterwards.
func TestLoopGuardOnEveryBroker(t *testing.T) {
	everyBroker(t, func(t *testing.T, b conformance.Broker) {
		const maxHops = 5
		topic := b.NewTopic(t, 1).(destTopic)
		be, rcv := newEchoBackend(t), ferrytest.NewReceiver(t)
		ferrytest.Start(t, fmt.Sprintf(`loop_guard: { max_hops: %d }
tenants: [ { name: t, api_keys: [conformance-key] } ]
functions:
  - name: f
    tenant: t
    backend: { http: { url: %q, timeout: 10s } }
    destinations: { on_success: [ %s ], on_failure: [ %s ] }
triggers:
  - { name: self, function: f, source: %s }
`, maxHops, be.srv.URL, topic.DestinationYAML(), rcv.YAML(), topic.SourceYAML("g-loop")))
		topic.Produce(t, []conformance.Msg{{Key: "k", Payload: []byte(`{"start": true}`)}})

		var last wire.Outcome
		ferrytest.WaitFor(t, time.Minute, "loop_detected at on_failure", func() bool {
			for _, o := range rcv.Outcomes() {
				if o.Error != nil && o.Error.Code == "loop_detected" {
					last = o
					return true
				}
			}
			return false
		})
		// Nothing keeps running: the group commits everything, and then no
		// further invocation or outcome appears.
		pollertest.WaitBacklog(t, topic, "g-loop", 0, time.Minute)
		calls, outcomes := be.calls(), rcv.Outcomes()
		t.Logf("%s: %d invocations (hops %v), then %s %s at on_failure (hops %d)",
			b.Name(), len(calls), calls, last.Type, last.Error.Code, last.Hops)
		want := make([]string, maxHops)
		for i := range want {
			want[i] = strconv.Itoa(i + 1) // the request of an invocation with n hops carries n+1
		}
		if strings.Join(calls, ",") != strings.Join(want, ",") {
			t.Fatalf("backend calls carried Ferry-Hops %v, want exactly %v", calls, want)
		}
		if len(outcomes) != 1 || last.Type != wire.TypeFailed || last.Function != "f" || last.Hops != maxHops+1 ||
			last.Attempts != 0 || last.RequestContext == nil || last.RequestContext.Condition != "loop_detected" {
			t.Fatalf("on_failure received %d outcomes, last %+v; want one ferry.task.failed, loop_detected, 0 attempts, hops %d",
				len(outcomes), last, maxHops+1)
		}
	})
}

// TestSinksSurviveBrokerOutage: 1,000 async outcomes go to an MQ
// destination; the broker is stopped for 20 s mid-run; every outcome is
// in the target once the broker is back.
func TestSinksSurviveBrokerOutage(t *testing.T) {
	everyBroker(t, func(t *testing.T, b conformance.Broker) {
		const n, outage = 1000, 20 * time.Second
		topic := b.NewTopic(t, 2).(destTopic)
		be := newEchoBackend(t)
		dest := withKeys(topic.DestinationYAML(), "timeout: 5s, retry: { max_attempts: 1000, initial_interval: 200ms, max_interval: 2s, max_age: 1h }")
		p := ferrytest.Start(t, fmt.Sprintf(`tenants: [ { name: t, api_keys: [conformance-key] } ]
functions:
  - name: f
    tenant: t
    max_concurrency: 16
    backend: { http: { url: %q, timeout: 10s } }
    destinations: { on_success: [ %s ] }
`, be.srv.URL, dest))

		ids := submit(t, p, 0, n/2)
		ferrytest.WaitFor(t, time.Minute, "100 outcomes delivered", func() bool { return metric(t, p, "delivered") >= 100 })
		brokers.Stop(t, b.Name())
		stopped := time.Now()
		ids = append(ids, submit(t, p, n/2, n)...)
		time.Sleep(time.Until(stopped.Add(outage))) // the outage itself, not a synchronisation
		delivered := metric(t, p, "delivered")
		brokers.Start(t, b.Name())
		restarted := time.Now()

		seen := map[string]int{}
		src := sources.For(t, topic, "g-check")
		pollertest.ConnectRetry(t, src, time.Minute)
		var lastAt time.Time
		pollertest.ReadUntil(t, src, 3*time.Minute, func(m *poller.Message) {
			seen[m.Headers[wire.HeaderID]]++
			lastAt = time.Now()
			pollertest.Ack(t, m, nil)
		}, func() bool { return len(seen) >= n })
		pollertest.Close(t, src)

		want := map[string]bool{}
		for _, id := range ids {
			want[id] = true
		}
		lost, dup, unexpected := 0, 0, 0
		for _, id := range ids {
			switch k := seen[id]; {
			case k == 0:
				lost++
			case k > 1:
				dup += k - 1
			}
		}
		for id := range seen {
			if !want[id] {
				unexpected++
			}
		}
		retried := metric(t, p, "retried")
		t.Logf("%s sink, broker stopped %s mid-run: N=%d lost=%d duplicated=%d unexpected=%d recovery_s=%.1f (delivered before the restart %.0f, retried deliveries %.0f)",
			b.Name(), outage, n, lost, dup, unexpected, lastAt.Sub(restarted).Seconds(), delivered, retried)
		if lost != 0 || unexpected != 0 {
			t.Fatalf("lost=%d unexpected=%d, want 0", lost, unexpected)
		}
		if delivered >= n || retried == 0 {
			t.Fatalf("the outage did not hit the deliveries (delivered %v of %d before the restart, %v retries)", delivered, n, retried)
		}
	})
}

// withKeys adds keys to the sink mapping of a flow-style destination
// `{ kind: { ... } }`.
func withKeys(dest, keys string) string {
	inner := strings.LastIndex(strings.TrimSuffix(strings.TrimSpace(dest), "}"), "}")
	return dest[:inner] + ", " + keys + " " + dest[inner:]
}

// submit submits tasks with payloads {"n": from} .. {"n": to-1} from 8
// clients and returns their ids.
func submit(t *testing.T, p *ferrytest.Proc, from, to int) []string {
	t.Helper()
	var (
		mu  sync.Mutex
		ids []string
		wg  sync.WaitGroup
		nx  atomic.Int64
	)
	nx.Store(int64(from))
	client := &http.Client{Timeout: 10 * time.Second}
	for range 8 {
		wg.Go(func() {
			for i := int(nx.Add(1) - 1); i < to; i = int(nx.Add(1) - 1) {
				req, _ := http.NewRequest("POST", p.URL("/v1/functions/f/tasks"), bytes.NewReader(fmt.Appendf(nil, `{"n": %d}`, i)))
				req.Header.Set("Authorization", "Bearer conformance-key")
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("submit %d: %v", i, err)
					return
				}
				var v struct{ ID string }
				err = json.NewDecoder(resp.Body).Decode(&v)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted || err != nil || v.ID == "" {
					t.Errorf("submit %d: %s (%v)", i, resp.Status, err)
					return
				}
				mu.Lock()
				ids = append(ids, v.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return ids
}

var deliveryLine = regexp.MustCompile(`(?m)^ferry_deliveries_total\{kind="[a-z]+",result="([a-z]+)"\} (\S+)$`)

// metric returns ferry_deliveries_total for result, summed over kinds.
func metric(t *testing.T, p *ferrytest.Proc, result string) float64 {
	t.Helper()
	resp, err := http.Get(p.URL("/metrics"))
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sum := 0.0
	for _, m := range deliveryLine.FindAllSubmatch(body, -1) {
		if string(m[1]) == result {
			v, _ := strconv.ParseFloat(string(m[2]), 64)
			sum += v
		}
	}
	return sum
}
