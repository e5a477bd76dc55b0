package chaos

import (
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrydev/ferry/test/brokers"
	"github.com/ferrydev/ferry/test/brokers/redisstreamtest"
	"github.com/ferrydev/ferry/test/ferrytest"
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

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
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

// rowPartition runs the Redis Streams trigger through a proxy and, a third
// of the way in, applies fault for hold, then heals.
func rowPartition(t *testing.T, tab *Table, fault string, hold time.Duration, n int) {
	row := Row{Fault: "broker partitioned mid-batch: " + fault, Target: "redis streams (TCP proxy)"}
	defer func() { tab.Add(row) }()
	brokers.Require(t, brokers.Redis)
	target := strings.TrimSuffix(strings.TrimPrefix(brokers.Addr(brokers.Redis), "redis://"), "/0")
	px := newProxy(t, target)
	l := NewLedger()
	be := NewBackend(l, func(int, int) (int, time.Duration, int) { return 0, 2 * time.Millisecond, 0 })
	defer be.Close()
	source := topicFill(redisstreamtest.New())(t, n, l)
	source = strings.ReplaceAll(source, target, px.addr())
	p := ferrytest.Start(t, serveConfig(be.URL(), "", fmt.Sprintf(`triggers:
  - { name: trig, function: f, source: %s, concurrency: 4, batch: { size: 1 } }
`, source)))
	if !waitUntil(2*time.Minute, func() bool { d, _ := l.Delivered(); return d >= n/3 }) {
		row.Status = "FAIL: the trigger did not reach a third of the messages"
		t.Error(row.Status)
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
	row.Recovery = recovery(l, faultAt, back, 2*time.Minute)
	settled := settle(l, 3*time.Second, 3*time.Minute)
	p.Term()
	row.Count = l.Count()
	row.Status = verdict(row.Count, -1, settled)
	row.Note = fmt.Sprintf("%s for %s at %d of %d delivered", fault, hold, at, n)
	if row.Status != "ok" {
		t.Error(row.Status)
	}
}
