package chaos

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/kafkatest"
	"github.com/ferrydev/ferry/test/brokers/redisstreamtest"
)

// proxyMode is what the proxy does to the bytes it forwards.
type proxyMode int

const (
	pass     proxyMode = iota
	slow               // every chunk waits 200 ms
	halfOpen           // connections stay open, nothing is forwarded
)

// proxy is a TCP proxy the test controls, in front of one broker port.
type proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  proxyMode
	conns []net.Conn
}

// newProxy listens on listen ("": any free port) and forwards to target.
func newProxy(t testing.TB, listen, target string) *proxy {
	t.Helper()
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go p.accept()
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) setMode(m proxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode = m
}

func (p *proxy) current() proxyMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// cut closes every connection (both sides see a reset or EOF).
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

// pipe copies src to dst as the mode says, until either side closes.
func (p *proxy) pipe(src, dst net.Conn) {
	defer func() { _ = src.Close(); _ = dst.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			for p.current() == halfOpen {
				time.Sleep(10 * time.Millisecond) // hold the bytes: the peer sees silence
			}
			if p.current() == slow {
				time.Sleep(200 * time.Millisecond)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF or a closed connection: close both sides
		}
	}
}

// partitionTarget is a broker a partition row puts the proxy in front of.
type partitionTarget struct {
	label, broker string
	fill          func(t *testing.T, n int, l *Ledger) string
	// direct is the broker address in fill's source YAML, replaced there
	// by the proxy's; listen is where the proxy listens ("": any port)
	// and upstream where it forwards ("": direct).
	direct, listen, upstream string
	// prepare, when set, readies the broker first.
	prepare func(t *testing.T)
}

// hostPort is the host:port of a broker URL (redis://h:p/0, amqp://u:p@h:p/).
func hostPort(t *testing.T, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// partitionTargets are the brokers a TCP proxy can sit in front of. Kafka
// advertises its own address, so its rows use the broker's second
// listener, which advertises the proxy's fixed port (test/brokers/up.sh);
// RocketMQ's broker registers its one address with the name server, and
// 4.9 cannot bind one address and advertise another: not proxied.
func partitionTargets(t *testing.T) []partitionTarget {
	upstream := envOr("FERRY_KAFKA_PROXIED", "127.0.0.1:9094")
	return []partitionTarget{
		{label: "kafka", broker: brokers.Kafka, fill: topicFill(kafkatest.New()),
			direct: brokers.Addr(brokers.Kafka), listen: envOr("FERRY_KAFKA_PROXY", "127.0.0.1:9095"), upstream: upstream,
			prepare: func(t *testing.T) {
				if c, err := net.DialTimeout("tcp", upstream, time.Second); err == nil {
					_ = c.Close()
					return
				}
				// A broker started before up.sh had the second listener.
				brokers.Stop(t, brokers.Kafka)
				brokers.Start(t, brokers.Kafka)
			}},
		{label: "rabbitmq (quorum)", broker: brokers.RabbitMQ, fill: rabbitFill("quorum"), direct: hostPort(t, brokers.Addr(brokers.RabbitMQ))},
		{label: "redis streams", broker: brokers.Redis, fill: topicFill(redisstreamtest.New()), direct: hostPort(t, brokers.Addr(brokers.Redis))},
	}
}

// rowPartition runs a trigger through a proxy in front of the broker
// and, a third of the way in, applies fault for hold, then heals.
func rowPartition(t *testing.T, tab *Table, target partitionTarget, fault string, hold time.Duration, n int) {
	row := Row{Fault: "broker partitioned mid-batch: " + fault, Target: target.label + " (TCP proxy)"}
	defer func() { tab.Add(row) }()
	brokers.Require(t, target.broker)
	if target.prepare != nil {
		target.prepare(t)
	}
	px := newProxy(t, target.listen, cmp.Or(target.upstream, target.direct))
	l := NewLedger()
	be := NewBackend(l, func(int, int) (int, time.Duration, int) { return 0, 2 * time.Millisecond, 0 })
	defer be.Close()
	source := strings.ReplaceAll(target.fill(t, n, l), target.direct, px.addr())
	p, ok := startTrigger(t, &row, l, be, source, n)
	if !ok {
		return
	}
	at, _ := l.Delivered()
	faultAt := time.Now()
	switch fault {
	case "cut":
		px.cut()
		px.setMode(halfOpen) // new connections hang too while cut
		time.Sleep(hold)     // the fault's length, not synchronisation
		px.cut()
	case "latency":
		px.setMode(slow)
		time.Sleep(hold)
	case "half-open":
		px.setMode(halfOpen)
		time.Sleep(hold)
		px.cut() // what a peer finally sees when the path comes back
	}
	px.setMode(pass)
	back := time.Now()
	during, _ := l.Delivered()
	row.Recovery = recovery(l, faultAt, back, 2*time.Minute)
	settled := settle(l, 3*time.Second, 3*time.Minute)
	p.Term()
	row.Count = l.Count()
	row.Status = verdict(row.Count, -1, settled)
	row.Note = fmt.Sprintf("%s for %s at %d of %d delivered; %d delivered when it healed", fault, hold, at, n, during)
	if during >= n {
		row.Note += " (the rest had been fetched before the fault: only acks and commits crossed it)"
	}
	if row.Status != "ok" {
		t.Error(row.Status)
	}
}
